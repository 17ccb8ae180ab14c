"""Who is calling, and what each role may do.

Roles map to the permission names operators know (``jobs.runs:execute``,
``settings.credentials:write``…). The API and the console ask the same ``Principal``.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.db.security_models import Role
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

    def check(self, permission: str) -> None:
        """Raise ``Forbidden`` (403) unless the role grants ``permission``."""
        if permission not in ALL_PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")
        if not self.can(permission):
            raise Forbidden(
                f"role {self.role.value} lacks permission {permission}",
                details={"permission": permission},
            )
