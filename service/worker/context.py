"""The arq worker context, typed."""

from __future__ import annotations

from typing import TypedDict

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from executors.services import Services
from service.settings import Settings
from service.worker.outages import Outage


class WorkerContext(TypedDict, total=False):
    # Put in by arq for every job.
    redis: ArqRedis
    job_id: str
    job_try: int
    enqueue_time: object
    score: int
    # Put in by service.worker.app before and during on_startup.
    settings: Settings
    queue: str
    worker_id: str
    engine: AsyncEngine
    services: Services
    database_outage: Outage
