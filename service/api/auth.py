"""Bearer-token authentication and role-based permissions.

Tokens are random, shown once, stored only as SHA-256. Each carries a role; roles map to
the permission names operators know (``jobs.runs:execute``, ``settings.credentials:write``…).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, func, select, update

from service.db.engine import DriverStatement, SessionFactory, single_statement
from service.db.security_models import ApiToken, Role
from service.errors import OpsjobsError

TOKEN_PREFIX = "ojt_"
# last_used_at is refreshed at most this often, so reads stay reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)

VIEWER_PERMISSIONS = frozenset(
    {
        "jobs.templates:read",
        "jobs.schedules:read",
        "jobs.runs:read",
        "settings.credentials:read",
        "settings.queues:read",
        "nifi:read",
    }
)
OPERATOR_PERMISSIONS = VIEWER_PERMISSIONS | {
    "jobs.templates:write",
    "jobs.templates:delete",
    "jobs.schedules:write",
    "jobs.schedules:delete",
    "jobs.runs:execute",
    "settings.credentials:write",
    "settings.credentials:delete",
    "nifi:write",
}
ADMIN_PERMISSIONS = OPERATOR_PERMISSIONS | {
    "settings.queues:write",
    "settings.tokens:read",
    "settings.tokens:write",
    "audit:read",
}
PERMISSIONS_BY_ROLE: dict[Role, frozenset[str]] = {
    Role.VIEWER: VIEWER_PERMISSIONS,
    Role.OPERATOR: frozenset(OPERATOR_PERMISSIONS),
    Role.ADMIN: frozenset(ADMIN_PERMISSIONS),
}
ALL_PERMISSIONS = PERMISSIONS_BY_ROLE[Role.ADMIN]


class Unauthorized(OpsjobsError):
    code = "unauthorized"


class Forbidden(OpsjobsError):
    code = "forbidden"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's user, role and permissions."""

    username: str
    role: Role
    token_id: int

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS_BY_ROLE[self.role]

    def may_see(self, is_global: bool, owner: str | None) -> bool:
        """Global resources are for everyone; private ones for their owner and admins."""
        return is_global or self.is_admin or owner == self.username


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_token(
    sessions: SessionFactory, *, name: str, username: str, role: Role, created_by: str | None
) -> tuple[ApiToken, str]:
    """Store a new token; returns the row and the token itself (shown once)."""
    token = new_token()
    row = ApiToken(
        name=name,
        username=username,
        role=role.value,
        token_hash=hash_token(token),
        prefix=token[: len(TOKEN_PREFIX) + 6],
        created_by=created_by,
    )
    async with sessions.begin() as session:
        session.add(row)
    return row, token


# One autocommit SELECT per request, on the driver connection (every request pays it);
# last_used_at is written only when it is stale.
_TOKEN_LOOKUP = DriverStatement(
    select(
        ApiToken.id,
        ApiToken.username,
        ApiToken.role,
        (
            ApiToken.last_used_at.is_(None)
            | (ApiToken.last_used_at < func.now() - LAST_USED_RESOLUTION)
        ).label("stale"),
    ).where(ApiToken.token_hash == bindparam("digest"), ApiToken.revoked_at.is_(None))
)
_TOUCH_TOKEN = (
    update(ApiToken).where(ApiToken.id == bindparam("token_id")).values(last_used_at=func.now())
)

_bearer = HTTPBearer(auto_error=False, description="An opsjobs API token (ojt_…)")


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller behind the bearer token; 401 when it is missing, unknown or revoked."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing bearer token")
    sessions: SessionFactory = request.state.sessions
    digest = hash_token(credentials.credentials)
    row = await _TOKEN_LOOKUP.fetchrow(sessions, digest=digest)
    if row is None:
        raise Unauthorized("invalid or revoked token")
    if row["stale"]:
        async with single_statement(sessions) as conn:
            await conn.execute(_TOUCH_TOKEN, {"token_id": row["id"]})
    return Principal(username=row["username"], role=Role(row["role"]), token_id=row["id"])


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates and checks one permission (403 without it)."""
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.can(permission):
            raise Forbidden(
                f"role {principal.role.value} lacks permission {permission}",
                details={"permission": permission},
            )
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
