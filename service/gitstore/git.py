"""Running the ``git`` CLI safely from the event loop.

Every call is a subprocess (``asyncio.create_subprocess_exec``, no shell) with an
environment built from scratch: nothing from the parent's ``GIT_*`` variables can point
git at another repository, no system or global configuration is read, hooks are
disabled, and git never prompts for credentials.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from service.errors import OpsjobsError

_CREDENTIALS_IN_URL = re.compile(r"(?<=://)[^/@\s]+@")
#: Lines of git's stderr kept in an error message.
_STDERR_LINES = 5


class GitError(OpsjobsError):
    """A git command failed or timed out."""

    code = "git_error"


@dataclass(frozen=True)
class GitIdentity:
    """Who commits."""

    name: str = "opsjobs"
    email: str = "opsjobs@localhost"


def redact(text: str) -> str:
    """``text`` with ``user:secret@`` parts of URLs removed."""
    return _CREDENTIALS_IN_URL.sub("***@", text)


def git_environment(identity: GitIdentity) -> dict[str, str]:
    """The complete environment for a git subprocess."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/nonexistent"),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",
        "SSH_ASKPASS": "",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
        "GIT_AUTHOR_NAME": identity.name,
        "GIT_AUTHOR_EMAIL": identity.email,
        "GIT_COMMITTER_NAME": identity.name,
        "GIT_COMMITTER_EMAIL": identity.email,
    }


#: Options for every command: no hooks, no filesystem monitor, no ``ext::`` transport.
_SAFE_OPTIONS = (
    "-c",
    f"core.hooksPath={os.devnull}",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "protocol.ext.allow=never",
)


async def run_git(
    args: Sequence[str],
    *,
    cwd: Path,
    identity: GitIdentity,
    stdin: bytes | None = None,
    time_limit: float = 120.0,
    check: bool = True,
    extra_env: Mapping[str, str] | None = None,
) -> tuple[int, bytes, str]:
    """Run ``git <args>`` in ``cwd``; returns ``(returncode, stdout, stderr)``.

    ``extra_env`` adds variables (remote authentication) to the built environment.

    Raises :class:`GitError` on a timeout, or on a non-zero exit when ``check``.
    """
    process = await asyncio.create_subprocess_exec(
        "git",
        *_SAFE_OPTIONS,
        *args,
        cwd=cwd,
        env={**git_environment(identity), **(extra_env or {})},
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(time_limit):
            out, err = await process.communicate(stdin)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise GitError(f"git {args[0]} timed out after {time_limit:g} s") from None
    except BaseException:
        # Cancelled: do not leave git running in the checkout we are giving up.
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    stderr = redact(err.decode("utf-8", "replace")).strip()
    if check and process.returncode != 0:
        detail = "\n".join(stderr.splitlines()[-_STDERR_LINES:])
        raise GitError(f"git {args[0]} failed: {detail or f'exit {process.returncode}'}")
    return process.returncode or 0, out, stderr
