"""One way to page a query: ``{items, total, page, page_size, total_pages}``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Query
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from service.api.schemas import Page

ItemT = TypeVar("ItemT")

PageQuery = Annotated[int, Query(ge=1, le=1_000_000, description="page number, from 1")]
PageSizeQuery = Annotated[int, Query(ge=1, le=100, description="items per page, at most 100")]


async def paginate(
    session: AsyncSession,
    model: type[DeclarativeBase],
    *,
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    page: int,
    page_size: int,
    to_item: Callable[[Any], ItemT],
) -> Page[ItemT]:
    """Count the matching rows of ``model`` and return the requested page of them."""
    total = await session.scalar(select(func.count()).select_from(model).where(*where)) or 0
    rows = await session.scalars(
        select(model)
        .where(*where)
        .order_by(*order_by)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return Page[ItemT](
        items=[to_item(row) for row in rows],
        total=total,
        page=page,
        page_size=page_size,
        total_pages=math.ceil(total / page_size),
    )
