"""Global and private resources: who may see a row, and who may change it.

Global rows are for everyone; private ones for their owner and admins. A private row of
someone else is answered as missing (404), so its existence does not leak.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, true
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.principals import Principal
from service.errors import Forbidden, NotFound

RowT = TypeVar("RowT")


def visible_to(model: Any, caller: Principal) -> ColumnElement[bool]:
    """The rows of ``model`` (with ``is_global`` and ``owner``) the caller may see."""
    if caller.is_admin:
        return true()
    condition: ColumnElement[bool] = or_(model.is_global, model.owner == caller.username)
    return condition


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
    if not caller.is_admin and row.owner != caller.username:
        raise Forbidden(f"only the owner or an admin may change this {label}")
