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


#: The HTTP status every face of the service answers an error with.
HTTP_STATUS: dict[type[OpsjobsError], int] = {
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 422,
    ServiceUnavailable: 503,
}


def http_status(exc: OpsjobsError) -> int:
    """The status for ``exc``: that of its nearest class in :data:`HTTP_STATUS`, else 400."""
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 400
