"""``Idempotency-Key`` on the endpoints that create runs.

The same key from the same principal (a token; a console user) within
``IDEMPOTENCY_WINDOW`` gets the first answer again — same status, same body — and creates
nothing; the same key with another request (method, path, query or body) is a 422 naming
the header. A row is reserved before the run is created and filled in with the answer
after, so of two concurrent requests with one key only one creates a run (the primary
key decides); the other waits for the answer and replays it. The run's INSERT records its
id on the reservation in the same statement: a request that fails before that releases
its key (a retry runs afresh), one that fails after answers with its run, and a
reservation whose process died is taken over after ``ABANDONED_AFTER`` — answered with its
run if it has one, else run afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from service.access.principals import Principal
from service.db.engine import SessionFactory, retry_lost
from service.db.models import JobRun
from service.db.security_models import IDEMPOTENCY_WINDOW, IdempotencyKey
from service.errors import Conflict, InvalidInput
from service.runs.commands import AFTER_ACCEPT_RETRY_DELAYS_S
from service.runs.lifecycle import IDEMPOTENCY_RESERVATION, Accepted
from service.runs.views import RunOut

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# A reservation whose request never answered (its process died) is taken over after this.
ABANDONED_AFTER = timedelta(seconds=60)
# How long a request waits for a concurrent one with the same key to answer.
WAIT_FOR_FIRST_S = 10.0
_POLL_S = 0.05

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description=(
            "Makes the request safe to repeat: the same key from the same token within 24 h "
            "returns the first answer (same status and body) and creates nothing; the same "
            "key with a different request is a 422."
        ),
    ),
]


class AcceptedRunOut(RunOut):
    """A run accepted as pending: its row is committed."""

    queued: bool = Field(
        description=(
            "true: its job is in Redis; false: Redis was unavailable and the reconciler "
            "queues the run when Redis is back"
        )
    )

    @classmethod
    def accepted(cls, accepted: Accepted) -> AcceptedRunOut:
        return cls.of(accepted.run, queued=accepted.queued)


def principal_key(caller: Principal) -> str:
    if caller.token_id is not None:
        return f"token:{caller.token_id}"
    return f"user:{caller.username}"


async def request_digest(request: Request) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.url.path, request.url.query):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(await request.body())
    return digest.hexdigest()


def _mismatch() -> InvalidInput:
    return InvalidInput(
        f"{HEADER} was already used for a different request",
        details=[
            {
                "loc": ["header", HEADER],
                "msg": "this key was sent with another method, path, query or body; "
                "use a new key for a new request",
            }
        ],
    )


async def create_once(
    request: Request,
    sessions: SessionFactory,
    caller: Principal,
    key: str | None,
    create: Callable[[], Awaitable[AcceptedRunOut]],
) -> AcceptedRunOut | JSONResponse:
    """Run ``create`` once per key (see the module); without a key, every time."""
    if key is None:
        return await create()
    principal = principal_key(caller)
    digest = await request_digest(request)
    deadline = time.monotonic() + WAIT_FOR_FIRST_S
    while True:
        if await _reserve(sessions, principal, key, digest):
            break
        stored = await _stored(sessions, principal, key)
        if stored is None:
            continue  # the first request failed and released the key: try again
        if stored.request_hash != digest:
            raise _mismatch()
        if stored.status_code is not None:
            return JSONResponse(stored.response, status_code=stored.status_code)
        if stored.abandoned and stored.run_id is not None:
            # Its request died after committing the run: that run is the answer.
            return await _answer_with_run(sessions, principal, key, stored.run_id)
        if time.monotonic() > deadline:
            raise Conflict(f"a request with this {HEADER} is still being processed; retry later")
        await asyncio.sleep(_POLL_S)
    reserved = IDEMPOTENCY_RESERVATION.set((principal, key))
    try:
        answer = await create()
    except Exception:
        # Failed — before the run was committed (nothing to keep: release the key), or
        # after (the run's INSERT recorded its id on the key: it is the answer).
        # (Should this read fail too, the key stays reserved until abandoned.)
        run_id = await _reserved_run(sessions, principal, key)
        if run_id is None:
            with contextlib.suppress(Exception):
                await _release(sessions, principal, key)
            raise
        logger.warning(
            "run-creating request failed after its run was committed; answering with the run",
            extra={"run_id": run_id},
        )
        return await _answer_with_run(sessions, principal, key, run_id)
    finally:
        IDEMPOTENCY_RESERVATION.reset(reserved)
    await _record_answer(sessions, principal, key, answer)
    return answer


async def _record_answer(
    sessions: SessionFactory, principal: str, key: str, answer: AcceptedRunOut
) -> None:
    await retry_lost(
        f"recording the answer to {HEADER}",
        lambda: _record(sessions, principal, key, answer),
        delays=AFTER_ACCEPT_RETRY_DELAYS_S,
    )


async def _answer_with_run(
    sessions: SessionFactory, principal: str, key: str, run_id: int
) -> AcceptedRunOut:
    """The answer for a committed run whose request did not answer: whether its job reached
    Redis is not known (``queued: false``; the reconciler queues it if not)."""
    async with sessions() as session:
        run = await session.get(JobRun, run_id)
    if run is None:
        raise Conflict(f"run {run_id}, created for this {HEADER}, has been deleted since")
    answer = AcceptedRunOut.accepted(Accepted(run, queued=False))
    await _record_answer(sessions, principal, key, answer)
    return answer


async def _reserve(sessions: SessionFactory, principal: str, key: str, digest: str) -> bool:
    """Take the key; an expired row (or one abandoned mid-request) is taken over."""
    now = func.now()
    statement = (
        insert(IdempotencyKey)
        .values(principal=principal, key=key, request_hash=digest)
        .on_conflict_do_update(
            index_elements=[IdempotencyKey.principal, IdempotencyKey.key],
            set_={
                "request_hash": digest,
                "status_code": None,
                "response": None,
                "run_id": None,
                "created_at": now,
            },
            where=or_(
                IdempotencyKey.created_at < now - IDEMPOTENCY_WINDOW,
                IdempotencyKey.status_code.is_(None)
                & IdempotencyKey.run_id.is_(None)
                & (IdempotencyKey.created_at < now - ABANDONED_AFTER),
            ),
        )
        .returning(IdempotencyKey.key)
    )
    async with sessions.begin() as session:
        return (await session.execute(statement)).first() is not None


async def _stored(sessions: SessionFactory, principal: str, key: str) -> Any:
    async with sessions() as session:
        return (
            await session.execute(
                select(
                    IdempotencyKey.request_hash,
                    IdempotencyKey.status_code,
                    IdempotencyKey.response,
                    IdempotencyKey.run_id,
                    (IdempotencyKey.created_at < func.now() - ABANDONED_AFTER).label("abandoned"),
                ).where(IdempotencyKey.principal == principal, IdempotencyKey.key == key)
            )
        ).one_or_none()


async def _record(
    sessions: SessionFactory, principal: str, key: str, answer: AcceptedRunOut
) -> None:
    async with sessions.begin() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.principal == principal, IdempotencyKey.key == key)
            .values(status_code=202, response=answer.model_dump(mode="json"), run_id=answer.id)
        )


async def _reserved_run(sessions: SessionFactory, principal: str, key: str) -> int | None:
    async with sessions() as session:
        run_id: int | None = await session.scalar(
            select(IdempotencyKey.run_id).where(
                IdempotencyKey.principal == principal, IdempotencyKey.key == key
            )
        )
    return run_id


async def _release(sessions: SessionFactory, principal: str, key: str) -> None:
    async with sessions.begin() as session:
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.principal == principal,
                IdempotencyKey.key == key,
                IdempotencyKey.status_code.is_(None),
            )
        )
