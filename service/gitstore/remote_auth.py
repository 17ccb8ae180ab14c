"""Authentication to a repository's remote with a stored credential, for git subprocesses.

Secrets reach git through its environment only, never its command line (visible in the
process list) nor a configuration file in the checkout:

- HTTPS remotes, token or username/password credential: an ``Authorization: Basic``
  header scoped to the remote's URL (``http.<url>.extraHeader`` via ``GIT_CONFIG_*``);
- SSH remotes (``ssh://`` or ``user@host:path``), SSH key credential: the key, decrypted,
  in a private temporary file given to ``ssh -i``, deleted when the work is done; host
  keys are checked against the device ``known_hosts`` file.
"""

from __future__ import annotations

import asyncio
import base64
import shlex
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncssh

from service.access.credentials import DecryptedCredential
from service.db.security_models import CredentialType
from service.errors import InvalidInput
from service.settings import SshSettings

_HTTP_TYPES = frozenset({CredentialType.TOKEN, CredentialType.USERNAME_PASSWORD})
_SSH_TYPES = frozenset({CredentialType.SSH_KEY})


def is_https(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def basic_auth_environment(url: str, username: str, secret: str) -> dict[str, str]:
    """git's environment sending ``Authorization: Basic`` to ``url`` (and nowhere else)."""
    token = base64.b64encode(f"{username}:{secret}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{url}.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {token}",
    }


def ssh_command(key_file: Path, ssh: SshSettings) -> str:
    """The ``GIT_SSH_COMMAND`` using only ``key_file``, never prompting."""
    checking = "accept-new" if ssh.accept_new else "yes"
    return " ".join(
        [
            "ssh",
            "-i",
            shlex.quote(str(key_file)),
            "-o IdentitiesOnly=yes",
            "-o BatchMode=yes",
            "-o",
            shlex.quote(f"UserKnownHostsFile={ssh.known_hosts.resolve()}"),
            f"-o StrictHostKeyChecking={checking}",
        ]
    )


def _refuse(credential: DecryptedCredential, remote: str) -> InvalidInput:
    return InvalidInput(
        f"credential {credential.name!r} ({credential.type.value}) cannot authenticate to "
        f"an {remote} remote"
    )


@asynccontextmanager
async def remote_environment(
    url: str | None, credential: DecryptedCredential | None, ssh: SshSettings
) -> AsyncIterator[dict[str, str]]:
    """The extra git environment for ``url`` with ``credential`` (empty without either)."""
    if url is None or credential is None:
        yield {}
        return
    if is_https(url):
        secret = credential.token or credential.password
        if credential.type not in _HTTP_TYPES or not secret:
            raise _refuse(credential, "HTTPS")
        yield basic_auth_environment(url, credential.username or "git", secret)
        return
    if credential.type not in _SSH_TYPES or not credential.ssh_key:
        raise _refuse(credential, "SSH")
    try:
        key = asyncssh.import_private_key(credential.ssh_key, credential.passphrase)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise InvalidInput(f"credential {credential.name!r}: unusable SSH key ({exc})") from None
    directory = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="opsjobs-git-"))
    try:
        key_file = directory / "key"
        await asyncio.to_thread(_write_private, key_file, key.export_private_key("openssh"))
        yield {"GIT_SSH_COMMAND": ssh_command(key_file, ssh)}
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, True)


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600)
    path.write_bytes(data)
