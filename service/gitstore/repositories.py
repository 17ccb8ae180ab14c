"""Stored git repositories: validation of their remote, branch and checkout path, and the
:class:`GitConfigStore` for one of them.

Every checkout lives under the configured root (``[git] checkout_root``): a repository's
``local_path`` is relative to it and checked like any repository path, so an API user can
never point the worker at an arbitrary directory. Remote URLs must be ``https://``,
``ssh://``, ``git://`` or scp-like ``user@host:path``; ``file://`` only when the settings
allow it. A URL carrying a password is refused: secrets belong in credentials; so is one
whose user, host or path starts with ``-``, which ``ssh`` and ``git`` could take for an
option.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from service.db.device_models import GitRepository
from service.errors import InvalidInput
from service.gitstore.git import GitIdentity
from service.gitstore.locks import RepositoryLocks
from service.gitstore.paths import InvalidPath, safe_relative_path
from service.gitstore.store import GitConfigStore, RepositorySpec
from service.settings import GitSettings

_URL = re.compile(r"^(?:https?|ssh|git)://[^\s/?#]+/\S*$")
_FILE_URL = re.compile(r"^file:///\S+$")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~/][^\s]*$")
_PASSWORD_IN_URL = re.compile(r"^[a-z]+://[^/@\s]*:[^/@\s]*@")
_BRANCH = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._/-]{0,254}$")


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, details=[{"loc": ["body", field], "msg": message}])


def validate_remote_url(url: str, *, allow_file: bool) -> str:
    """``url`` if it is a usable remote; raises a 422 naming ``url``."""
    if _PASSWORD_IN_URL.match(url):
        raise _invalid("url", "the URL carries a password; store it in a credential instead")
    if _URL.match(url) or _SCP_LIKE.match(url):
        _refuse_option_like(url)
        return url
    if _FILE_URL.match(url):
        if allow_file:
            return url
        raise _invalid("url", "file:// remotes are disabled ([git] allow_file_urls)")
    raise _invalid("url", "expected an https://, ssh://, git:// or user@host:path remote URL")


def _components(url: str) -> tuple[str, str, str]:
    """User, host and path of a URL or an scp-like ``user@host:path``, URL-decoded."""
    if "://" in url:
        parts = urlsplit(url)
        user, _, host = parts.netloc.rpartition("@")
        host = host.rsplit(":", 1)[0] if not host.startswith("[") else host
        path = parts.path
    else:
        user_host, _, path = url.partition(":")
        user, _, host = user_host.rpartition("@")
    return unquote(user), unquote(host), unquote(path)


def _refuse_option_like(url: str) -> None:
    """A user, host or path segment starting with ``-`` could be read as an option by
    ``ssh`` or ``git`` (``ssh://-oProxyCommand=…``): refused, also when URL-encoded."""
    user, host, path = _components(url)
    named = [("user", user), ("host", host)] + [("path", part) for part in path.split("/")]
    for component, value in named:
        if value.startswith("-"):
            raise _invalid("url", f"the URL's {component} starts with '-' ({value[:40]!r})")


def validate_branch(branch: str) -> str:
    """A branch name git accepts and that cannot be taken for an option."""
    if (
        not _BRANCH.match(branch)
        or ".." in branch
        or "//" in branch
        or branch.endswith(("/", ".lock", "."))
    ):
        raise _invalid("branch", f"{branch!r} is not a valid branch name")
    return branch


def validate_local_path(path: str) -> str:
    """A checkout directory relative to the checkout root."""
    try:
        return safe_relative_path(path)
    except InvalidPath as exc:
        raise _invalid("local_path", exc.message) from None


def checkout_path(settings: GitSettings, repository: GitRepository) -> Path:
    """Where ``repository`` is checked out."""
    return settings.checkout_root / (repository.local_path or f"repo-{repository.id}")


def repository_spec(
    settings: GitSettings,
    repository: GitRepository,
    environment: Mapping[str, str] | None = None,
    *,
    remote: bool = True,
) -> RepositorySpec:
    """The store's view of a stored repository; the lock is per repository id.

    ``remote=False`` works on the local checkout alone (no fetch, no push).
    """
    return RepositorySpec(
        key=f"repository-{repository.id}",
        path=checkout_path(settings, repository),
        url=repository.url if remote else None,
        branch=repository.branch,
        identity=GitIdentity(name=repository.author_name, email=repository.author_email),
        environment=dict(environment or {}),
    )


def open_store(
    settings: GitSettings,
    repository: GitRepository,
    locks: RepositoryLocks,
    environment: Mapping[str, str] | None = None,
    *,
    remote: bool = True,
) -> GitConfigStore:
    """A store for ``repository`` with the configured git timeout (and remote auth)."""
    spec = repository_spec(settings, repository, environment, remote=remote)
    return GitConfigStore(spec, locks, git_timeout=settings.timeout)
