"""The CLI's exit codes and its one-line failures."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Stable exit codes of every client verb."""

    OK = 0
    #: The run failed or was cancelled, or its outcome reached ``--fail-on``.
    FAILED = 1
    #: Bad usage or input (the API refused it with a 4xx other than 401/403).
    USAGE = 2
    #: The service cannot be reached, failed, or refused the token (401/403).
    UNREACHABLE = 3


class CliError(Exception):
    """A failure the CLI prints as one line on stderr before exiting with ``code``."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
