"""The small error vocabulary of opsjobs.

Domain code raises these; the API translates them to JSON errors in one handler, the
worker records them on the run. Nothing below the edges raises HTTP exceptions.
"""

from __future__ import annotations

from typing import Any


class OpsjobsError(Exception):
    """Base of every expected error; ``code`` is stable and machine-readable."""

    code = "error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Unauthorized(OpsjobsError):
    """No valid credentials: a missing, unknown or revoked token, or no console session."""

    code = "unauthorized"


class Forbidden(OpsjobsError):
    """The caller is known but may not do this (role, ownership, a missing CSRF token)."""

    code = "forbidden"


class NotFound(OpsjobsError):
    code = "not_found"


class Conflict(OpsjobsError):
    """The request is valid but the resource's state does not allow it."""

    code = "conflict"


class InvalidInput(OpsjobsError):
    """Input failed validation; ``details`` lists ``{"loc": [...], "msg": ...}`` items."""

    code = "invalid_input"


class UnknownJobType(InvalidInput):
    code = "unknown_job_type"


class TargetResolutionError(OpsjobsError):
    """Targets could not be resolved; the run fails rather than widening or narrowing."""

    code = "target_resolution_failed"


class ServiceUnavailable(OpsjobsError):
    """A backing service (PostgreSQL, Redis) cannot be reached."""

    code = "service_unavailable"
