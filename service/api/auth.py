"""Bearer-token authentication and role checks for API routes.

Tokens, roles and permissions live in ``service.access``; this module turns the
``Authorization`` header into a :class:`Principal` and a permission into a dependency.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.access.principals import ALL_PERMISSIONS, Principal
from service.access.tokens import hash_token, principal_for_digest
from service.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False, description="An opsjobs API token (ojt_…)")


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller behind the bearer token; 401 when it is missing, unknown or revoked."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing bearer token")
    principal = await principal_for_digest(
        request.state.sessions, hash_token(credentials.credentials)
    )
    if principal is None:
        raise Unauthorized("invalid or revoked token")
    return principal


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates and checks one permission (403 without it)."""
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        principal.check(permission)
        return principal

    return check


# Route parameter types: ``caller: RunsExecutor`` authenticates and checks the permission.
RunsReader = Annotated[Principal, Depends(require("jobs.runs:read"))]
RunsExecutor = Annotated[Principal, Depends(require("jobs.runs:execute"))]
TemplatesReader = Annotated[Principal, Depends(require("jobs.templates:read"))]
TemplatesWriter = Annotated[Principal, Depends(require("jobs.templates:write"))]
TemplatesDeleter = Annotated[Principal, Depends(require("jobs.templates:delete"))]
SchedulesReader = Annotated[Principal, Depends(require("jobs.schedules:read"))]
SchedulesWriter = Annotated[Principal, Depends(require("jobs.schedules:write"))]
SchedulesDeleter = Annotated[Principal, Depends(require("jobs.schedules:delete"))]
CredentialsReader = Annotated[Principal, Depends(require("settings.credentials:read"))]
CredentialsWriter = Annotated[Principal, Depends(require("settings.credentials:write"))]
CredentialsDeleter = Annotated[Principal, Depends(require("settings.credentials:delete"))]
QueuesReader = Annotated[Principal, Depends(require("settings.queues:read"))]
QueuesWriter = Annotated[Principal, Depends(require("settings.queues:write"))]
TokensReader = Annotated[Principal, Depends(require("settings.tokens:read"))]
TokensWriter = Annotated[Principal, Depends(require("settings.tokens:write"))]
AuditReader = Annotated[Principal, Depends(require("audit:read"))]
NifiReader = Annotated[Principal, Depends(require("nifi:read"))]
NifiWriter = Annotated[Principal, Depends(require("nifi:write"))]
NotificationsReader = Annotated[Principal, Depends(require("notifications:read"))]
NotificationsWriter = Annotated[Principal, Depends(require("notifications:write"))]
MaintenanceReader = Annotated[Principal, Depends(require("maintenance:read"))]
MaintenanceWriter = Annotated[Principal, Depends(require("maintenance:write"))]
