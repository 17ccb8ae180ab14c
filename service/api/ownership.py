"""The API's adapters of the use rule (``service.access.ownership``): the resources a
request body names, and the check on changing where a shared resource connects."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.ownership import authorize
from service.access.principals import Principal
from service.access.resources import ResourceKind, ResourceUse, resource_uses


def body_uses(body: BaseModel, fields: Collection[str] | None = None) -> list[ResourceUse]:
    """The resources a request body names; with ``fields``, only in those fields."""
    uses = resource_uses(body, ("body",))
    if fields is None:
        return uses
    return [use for use in uses if use.loc[1] in fields]


async def require_redirect_allowed(
    session: AsyncSession,
    caller: Principal,
    kind: ResourceKind,
    row_id: int,
    changes: Mapping[str, Any],
    connection_fields: Iterable[str],
) -> None:
    """Changing where a holding resource sends its credentials (its URL, proxy, TLS
    checks) requires being allowed to use the resource as it is — every credential it holds
    now: 403 otherwise. (Credentials given in the same change are uses of their own, see
    :func:`body_uses`; replacing someone's credential first is a change of its own.)"""
    changed = [name for name in connection_fields if name in changes]
    if changed:
        await authorize(session, caller, [ResourceUse(kind, row_id, ("body", changed[0]))])
