"""A read answered 503 because its database connection was lost runs once more.

The lost connection is already out of the pool (``service.db.engine``), so the second
try gets a fresh one: a request that starts just after connections were terminated is
answered, not refused. Only GET and HEAD are repeated (they change nothing); anything else
answers 503 and the client repeats it (with an ``Idempotency-Key`` where it creates runs).
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import LOST_CONNECTION_FLAG
from service.db.engine import is_lost_connection

logger = logging.getLogger(__name__)

_SAFE_METHODS = frozenset({"GET", "HEAD"})


class RetryLostConnection:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        started = False
        held = False

        async def first_send(message: Message) -> None:
            nonlocal started, held
            if message["type"] == "http.response.start":
                if message["status"] == 503 and scope.get(LOST_CONNECTION_FLAG):
                    held = True
                    return
                started = True
            if not held:
                await send(message)

        try:
            await self.app(scope, receive, first_send)
        except Exception as error:
            if started or not is_lost_connection(error):
                raise
            held = True
        if held:
            scope.pop(LOST_CONNECTION_FLAG, None)
            logger.info("read repeated after a lost database connection")
            await self.app(scope, receive, send)
