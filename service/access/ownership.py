"""The one rule: may a principal *use* a resource — and, from it, who sees a row.

*Owned* resources (job templates, schedules, credentials, inventories, command templates,
notification channels) are global or private to their owner; a principal may use one
that is global, its own, or any when it is an admin. *Holding* resources (git
repositories, NiFi instances) are shared by everyone but carry a credential: a principal
may use one only if it may use the credential it holds, so nobody can point someone
else's secret somewhere or spend it in a run. A NiFi cluster holds the credentials of
all its members; an email notification channel is owned and holds its SMTP credential
too. A resource is *private* when it, or a credential it holds, is private; a run that
uses one is private to its principal.

Owned resources a principal may not use do not exist for it (404 in a path, 422 naming
the field in a body: their existence does not leak); holding resources are visible to
every reader, so using one it may not use is a 403. Every write path of the API and the
console, and the worker before a run uses anything, call :func:`authorize` with the
resources a request names (see ``service.access.resources``); only an owner or an admin
changes an owned row (:func:`require_owner`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.principals import Principal
from service.access.resources import ResourceKind, ResourceUse
from service.db.device_models import CommandTemplate, GitRepository, Inventory
from service.db.models import JobSchedule, JobTemplate
from service.db.nifi_models import NifiClusterRow, NifiInstanceRow
from service.db.notify_models import NotificationChannel
from service.db.security_models import Credential
from service.errors import Forbidden, InvalidInput, NotFound

#: (resource id, is_global, owner) rows.
_Rows = Select[int, bool | None, str | None]
#: PostgreSQL integer ids; anything else names nothing.
MAX_ID = 2**31 - 1

RowT = TypeVar("RowT")

_OWNED: dict[ResourceKind, Any] = {
    ResourceKind.JOB_TEMPLATE: JobTemplate,
    ResourceKind.JOB_SCHEDULE: JobSchedule,
    ResourceKind.CREDENTIAL: Credential,
    ResourceKind.INVENTORY: Inventory,
    ResourceKind.COMMAND_TEMPLATE: CommandTemplate,
}


@dataclass(frozen=True)
class Scope:
    """Who a row is for: everyone (global) or its owner."""

    is_global: bool
    owner: str | None


def may_use(principal: Principal, scope: Scope) -> bool:
    """The rule itself: global, the principal's own, or the principal is an admin."""
    return principal.may_see(scope.is_global, scope.owner)


def visible_to(model: Any, caller: Principal) -> ColumnElement[bool]:
    """The rows of ``model`` (with ``is_global`` and ``owner``) the caller may see (use)."""
    if caller.is_admin:
        return true()
    if caller.system:
        condition: ColumnElement[bool] = model.is_global.is_(True)
        return condition
    return or_(model.is_global, model.owner == caller.username)


async def get_visible(
    session: AsyncSession,
    model: type[RowT],
    row_id: int,
    caller: Principal,
    *,
    label: str,
    for_update: bool = False,
) -> RowT:
    """The row if the caller may see it, else 404 naming ``label`` and the id."""
    row = await session.get(model, row_id, with_for_update=for_update)
    if row is None or not caller.may_see(getattr(row, "is_global"), getattr(row, "owner")):  # noqa: B009
        raise NotFound(f"{label} {row_id} does not exist")
    return row


def require_owner(caller: Principal, row: Any, *, label: str) -> None:
    """Only the owner or an admin may change or delete a row."""
    if not caller.is_admin and not caller.owns(row.owner):
        raise Forbidden(f"only the owner or an admin may change this {label}")


@dataclass(frozen=True)
class Found:
    """A resource as the rule sees it: its own scope (owned kinds) and the scopes of the
    credentials it holds (holding kinds and clusters)."""

    kind: ResourceKind
    id: int
    own: Scope | None = None
    held: tuple[Scope, ...] = ()

    @property
    def private(self) -> bool:
        own_private = self.own is not None and not self.own.is_global
        return own_private or any(not scope.is_global for scope in self.held)

    def visible_to(self, principal: Principal) -> bool:
        return self.own is None or may_use(principal, self.own)

    def usable_by(self, principal: Principal) -> bool:
        return self.visible_to(principal) and all(may_use(principal, s) for s in self.held)


@dataclass(frozen=True)
class UseCheck:
    """The resources a request uses, as found: ``None`` for one that does not exist."""

    found: tuple[tuple[ResourceUse, tuple[Found, ...] | None], ...] = field(default=())

    @property
    def private(self) -> bool:
        """Whether anything used is private (a run using it is private to its principal)."""
        return any(item.private for _, rows in self.found for item in rows or ())

    def require(self, principal: Principal) -> None:
        """Raise unless ``principal`` may use every resource: ``InvalidInput`` naming each
        one that does not exist for it, else ``Forbidden`` naming each it may not use."""
        missing: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        for use, rows in self.found:
            where = list(use.loc)
            if rows is None or not all(row.visible_to(principal) for row in rows):
                missing.append({"loc": where, "msg": f"{use.kind.label} {use.id} does not exist"})
                continue
            for row in rows:
                if not row.usable_by(principal):
                    refused.append(
                        {
                            "loc": where,
                            "msg": f"{row.kind.label} {row.id} holds a credential "
                            f"{principal.username} may not use",
                        }
                    )
        if missing:
            raise InvalidInput(_sentence(missing), details=missing)
        if refused:
            raise Forbidden(_sentence(refused), details=refused)


def _sentence(items: list[dict[str, Any]]) -> str:
    """``credential 4 does not exist (parameters.credential_id); …``"""
    return "; ".join(f"{i['msg']} ({'.'.join(str(part) for part in i['loc'])})" for i in items)


async def look_up(session: AsyncSession, uses: Iterable[ResourceUse]) -> UseCheck:
    """Find what each use names (one query per kind named).

    The caller's pending changes are not flushed: a write path checks before it commits,
    and its own constraint errors belong to its commit.
    """
    with session.no_autoflush:
        return await _look_up(session, list(uses))


async def _look_up(session: AsyncSession, uses: list[ResourceUse]) -> UseCheck:
    by_kind: dict[ResourceKind, list[ResourceUse]] = {}
    for use in uses:
        by_kind.setdefault(use.kind, []).append(use)
    rows: dict[ResourceKind, dict[int, Found]] = {}
    everything: dict[ResourceKind, tuple[Found, ...]] = {}
    for kind, named in by_kind.items():
        ids = sorted({i for i in (_as_id(use.id) for use in named) if i is not None})
        wants_all = any(use.every for use in named)
        found = await _find(session, kind, None if wants_all else ids) if ids or wants_all else []
        rows[kind] = {item.id: item for item in found}
        if wants_all:
            everything[kind] = tuple(found)
    return UseCheck(
        tuple(
            (use, everything[use.kind] if use.every else _one(rows[use.kind], use.id))
            for use in uses
        )
    )


async def authorize(
    session: AsyncSession, principal: Principal, uses: Iterable[ResourceUse]
) -> UseCheck:
    """Look the uses up and require that ``principal`` may use them all."""
    check = await look_up(session, uses)
    check.require(principal)
    return check


def _one(found: dict[int, Found], value: object) -> tuple[Found, ...] | None:
    resource_id = _as_id(value)
    item = found.get(resource_id) if resource_id is not None else None
    return None if item is None else (item,)


def _as_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and 1 <= value <= MAX_ID else None


async def _find(
    session: AsyncSession, kind: ResourceKind, ids: Sequence[int] | None
) -> list[Found]:
    """The rows of ``kind`` with these ids (every row when ``ids`` is None)."""
    if kind is ResourceKind.NOTIFICATION_CHANNEL:
        return await _channels(session, ids)
    if kind in _OWNED:
        model = _OWNED[kind]
        query: _Rows = select(model.id, model.is_global, model.owner)
        owned = await session.execute(_only(query, model.id, ids))
        return [Found(kind, row.id, own=Scope(row.is_global, row.owner)) for row in owned]
    held: dict[int, list[Scope]] = {}
    for row in await session.execute(_held_credentials(kind, ids)):
        scopes = held.setdefault(row.id, [])
        if row.is_global is not None:
            scopes.append(Scope(row.is_global, row.owner))
    return [Found(kind, key, held=tuple(scopes)) for key, scopes in sorted(held.items())]


async def _channels(session: AsyncSession, ids: Sequence[int] | None) -> list[Found]:
    """Notification channels: owned, and an email channel holds its SMTP credential."""
    credential_id = NotificationChannel.config["credential_id"].as_integer()
    query = select(
        NotificationChannel.id,
        NotificationChannel.is_global,
        NotificationChannel.owner,
        Credential.is_global.label("held_global"),
        Credential.owner.label("held_owner"),
    ).outerjoin(Credential, Credential.id == credential_id)
    if ids is not None:
        query = query.where(NotificationChannel.id.in_(ids))
    rows = await session.execute(query)
    return [
        Found(
            ResourceKind.NOTIFICATION_CHANNEL,
            row.id,
            own=Scope(row.is_global, row.owner),
            held=() if row.held_global is None else (Scope(row.held_global, row.held_owner),),
        )
        for row in rows
    ]


def _held_credentials(kind: ResourceKind, ids: Sequence[int] | None) -> _Rows:
    """(resource id, credential scope) per credential a holding resource holds; a row of
    NULLs for one that holds none."""
    if kind is ResourceKind.GIT_REPOSITORY:
        query: _Rows = select(GitRepository.id, Credential.is_global, Credential.owner).outerjoin(
            Credential, Credential.id == GitRepository.credential_id
        )
        return _only(query, GitRepository.id, ids)
    if kind is ResourceKind.NIFI_INSTANCE:
        instances: _Rows = select(
            NifiInstanceRow.id, Credential.is_global, Credential.owner
        ).outerjoin(Credential, _instance_credential())
        return _only(instances, NifiInstanceRow.id, ids)
    # A cluster holds the credentials of its members.
    members: _Rows = (
        select(NifiClusterRow.id, Credential.is_global, Credential.owner)
        .outerjoin(NifiInstanceRow, NifiInstanceRow.cluster_id == NifiClusterRow.id)
        .outerjoin(Credential, _instance_credential())
    )
    return _only(members, NifiClusterRow.id, ids)


def _instance_credential() -> ColumnElement[bool]:
    """A NiFi instance holds its login (or key passphrase) and its TLS stores' credentials."""
    return or_(
        Credential.id == NifiInstanceRow.credential_id,
        Credential.id == NifiInstanceRow.keystore_credential_id,
        Credential.id == NifiInstanceRow.truststore_credential_id,
    )


def _only(query: _Rows, column: Any, ids: Sequence[int] | None) -> _Rows:
    return query if ids is None else query.where(column.in_(ids))
