"""One way to page a query: ``{items, total, total_exact, page, page_size, total_pages}``.

``total`` is exact up to :data:`EXACT_TOTAL_LIMIT` matching rows. Beyond that it is that
limit and ``total_exact`` is false ("at least"): counting every row of a large table costs
more than the page itself on every request; exact counts per status and job type over a
window are what `GET /api/job-runs/stats` is for. The API and the console page alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

ItemT = TypeVar("ItemT")
EXACT_TOTAL_LIMIT = 1_000


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int = Field(description="matching items; a lower bound when total_exact is false")
    total_exact: bool = Field(
        default=True, description=f"false when more than {EXACT_TOTAL_LIMIT:,} match"
    )
    page: int
    page_size: int
    total_pages: int


async def paginate(
    session: AsyncSession,
    model: type[DeclarativeBase],
    *,
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    page: int,
    page_size: int,
    to_item: Callable[[Any], ItemT],
    as_rows: bool = False,
) -> Page[ItemT]:
    """Count the matching rows of ``model`` (up to the limit) and return the requested page.

    ``as_rows`` hands ``to_item`` plain rows of the table's columns instead of ORM
    instances, for the long lists whose items never need the ORM.
    """
    matching = select(literal(1)).select_from(model).where(*where).limit(EXACT_TOTAL_LIMIT + 1)
    total = await session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    total_exact = total <= EXACT_TOTAL_LIMIT
    total = min(total, EXACT_TOTAL_LIMIT)
    query = select(*model.__table__.c) if as_rows else select(model)
    page_query = query.where(*where).order_by(*order_by).offset((page - 1) * page_size)
    result = await session.execute(page_query.limit(page_size))
    rows = result.all() if as_rows else result.scalars().all()
    return Page[ItemT](
        items=[to_item(row) for row in rows],
        total=total,
        total_exact=total_exact,
        page=page,
        page_size=page_size,
        total_pages=math.ceil(total / page_size),
    )
