"""Who acts, and what each role may do.

Roles map to the permission names operators know (``jobs.runs:execute``,
``settings.credentials:write``…). The API and the console ask the same ``Principal``. A run
runs as a principal too: its ``executed_by`` user for manual and API runs, the schedule's
owner for scheduled ones (the scheduler records it as ``executed_by``), and :data:`SYSTEM`
for system jobs. Its role is the highest one among that user's live tokens, read when the
run starts, so demoting or revoking a user also narrows what their schedules may still use.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import TriggeredBy
from service.db.security_models import ApiToken, Role
from service.errors import Forbidden

VIEWER_PERMISSIONS = frozenset(
    {
        "jobs.templates:read",
        "jobs.schedules:read",
        "jobs.runs:read",
        "settings.credentials:read",
        "settings.queues:read",
        "nifi:read",
        "notifications:read",
        "maintenance:read",
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
    "notifications:write",
    "maintenance:write",
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
_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
#: The name system runs show as their principal; no token acts as the system.
SYSTEM_NAME = "system"


@dataclass(frozen=True)
class Principal:
    """Who acts: a user with a role (``token_id`` when it came with a token), or the
    system, which owns nothing and may use global resources only."""

    username: str
    role: Role
    token_id: int | None = None
    system: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN and not self.system

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS_BY_ROLE[self.role]

    def owns(self, owner: str | None) -> bool:
        return not self.system and owner is not None and owner == self.username

    def may_see(self, is_global: bool, owner: str | None) -> bool:
        """Global resources are for everyone; private ones for their owner and admins."""
        return is_global or self.is_admin or self.owns(owner)

    def check(self, permission: str) -> None:
        """Raise ``Forbidden`` (403) unless the role grants ``permission``."""
        if permission not in ALL_PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")
        if not self.can(permission):
            raise Forbidden(
                f"role {self.role.value} lacks permission {permission}",
                details={"permission": permission},
            )


SYSTEM = Principal(SYSTEM_NAME, Role.VIEWER, system=True)


async def principal_named(session: AsyncSession, username: str | None) -> Principal:
    """The user ``username`` with the highest role among their live tokens (``viewer``
    when they have none: they keep what they own, nothing more); the system for None."""
    if username is None:
        return SYSTEM
    with session.no_autoflush:  # a write path asks before it commits its own changes
        roles = await session.scalars(
            select(ApiToken.role)
            .where(ApiToken.username == username, ApiToken.revoked_at.is_(None))
            .distinct()
        )
    role = max((Role(value) for value in roles), key=_RANK.__getitem__, default=Role.VIEWER)
    return Principal(username, role)


async def run_principal(
    session: AsyncSession, triggered_by: str, executed_by: str | None
) -> Principal:
    """The principal a run runs as (see the module docstring)."""
    if triggered_by == TriggeredBy.SYSTEM.value:
        return SYSTEM
    return await principal_named(session, executed_by)
