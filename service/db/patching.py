"""Writes from people (API, console): ``null`` may only clear a column that can be empty, and a
violated constraint is a 409 rather than a 500."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from service.errors import Conflict, InvalidInput


def refuse_nulls(model: type[DeclarativeBase], changes: Mapping[str, Any]) -> None:
    """A 422 naming every field sent as ``null`` whose column is NOT NULL."""
    columns = cast(Table, model.__table__).columns
    refused = [
        name
        for name, value in changes.items()
        if value is None and name in columns and not columns[name].nullable
    ]
    if refused:
        raise InvalidInput(
            f"{', '.join(refused)} cannot be null",
            details=[{"loc": ["body", name], "msg": "may not be null"} for name in refused],
        )


async def flush_or_conflict(session: AsyncSession, conflict: Conflict) -> None:
    """Flush pending changes; a unique or foreign-key violation becomes ``conflict`` (409)."""
    try:
        await session.flush()
    except IntegrityError:
        raise conflict from None
