"""Query parameters of every paged list (the paging itself is ``service.db.paging``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

PageQuery = Annotated[int, Query(ge=1, le=1_000_000, description="page number, from 1")]
PageSizeQuery = Annotated[int, Query(ge=1, le=100, description="items per page, at most 100")]
