"""One JSON error shape for every failure: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from asyncpg.exceptions import DataError as PostgresDataError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.db.engine import is_lost_connection
from service.errors import OpsjobsError, http_status

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OpsjobsError)
    status = http_status(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details), status_code=status, headers=headers
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    ]
    fields = ", ".join(".".join(str(part) for part in item["loc"]) for item in details)
    return JSONResponse(
        error_body("invalid_input", f"invalid request: {fields}", details), status_code=422
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
        exc.status_code, "http_error"
    )
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


#: Scope key set when the answer is a 503 for a lost database connection:
#: :class:`service.api.retry.RetryLostConnection` may then run a read once more.
LOST_CONNECTION_FLAG = "opsjobs.database_connection_lost"


async def _backend_unavailable(request: Request, exc: Exception) -> JSONResponse:
    error_id = uuid.uuid4().hex[:12]
    if is_lost_connection(exc):
        request.scope[LOST_CONNECTION_FLAG] = True
    logger.error(
        "backing service unavailable: %s", type(exc).__name__, extra={"error_id": error_id}
    )
    return JSONResponse(
        error_body(
            "service_unavailable", "a backing service is unavailable", {"error_id": error_id}
        ),
        status_code=503,
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A value PostgreSQL cannot take (out of range, a NUL character) is the client's 422;
    a lost connection is a 503."""
    assert isinstance(exc, DBAPIError)
    if is_lost_connection(exc):
        return await _backend_unavailable(request, exc)
    cause = exc.orig.__cause__ if exc.orig is not None else None
    if isinstance(cause, PostgresDataError):
        return JSONResponse(
            error_body(
                "invalid_input",
                "a value is out of range or holds characters that cannot be stored",
            ),
            status_code=422,
        )
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if is_lost_connection(exc):
        # asyncpg's connection-state errors are not all DBAPI errors.
        return await _backend_unavailable(request, exc)
    error_id = uuid.uuid4().hex[:12]
    logger.error(
        "unexpected error",
        exc_info=exc,
        extra={"error_id": error_id, "path": request.url.path},
    )
    return JSONResponse(
        error_body("internal_error", "unexpected error", {"error_id": error_id}), status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OpsjobsError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for exc_type in (
        OperationalError,
        InterfaceError,
        RedisConnectionError,
        RedisTimeoutError,
        ConnectionError,
        OSError,
    ):
        app.add_exception_handler(exc_type, _backend_unavailable)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
