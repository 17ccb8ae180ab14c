"""The error shape in the OpenAPI schema, declared once for every operation."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorOut(BaseModel):
    """``{"error": {"code", "message", "details"}}``: every 4xx and 5xx answer."""

    error: ErrorBody


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


# Passed to FastAPI(responses=...): it also replaces FastAPI's own 422 shape, which this
# API never sends.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("The request body is not valid JSON"),
    401: _error("Missing, unknown or revoked token"),
    403: _error("The token's role lacks the permission, or the resource is another owner's"),
    404: _error("No such resource"),
    409: _error("Conflicts with the resource's current state"),
    422: _error("Invalid input; `details` lists each field's location and message"),
    500: _error("Unexpected error; `details.error_id` names it in the logs"),
    503: _error("PostgreSQL or Redis is unavailable"),
}
