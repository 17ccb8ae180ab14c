"""``GET /metrics``: Prometheus text exposition, open unless ``api.metrics_open`` is false."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.security import HTTPBearer

from service.api.auth import authenticate
from service.api.deps import RedisDep, SessionsDep, SettingsDep
from service.api.metrics import CONTENT_TYPE, collect

router = APIRouter(tags=["metrics"])

METRICS_PERMISSION = "settings.queues:read"
# Read by hand, not declared as a dependency: the route is open by default.
_bearer = HTTPBearer(auto_error=False)


async def _check_access(request: Request, open_metrics: bool) -> None:
    if open_metrics:
        return
    principal = await authenticate(request, await _bearer(request))
    principal.check(METRICS_PERMISSION)


# Kept out of the OpenAPI schema: a scrape target, not part of the JSON API.
@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics(
    request: Request, settings: SettingsDep, sessions: SessionsDep, redis: RedisDep
) -> Response:
    """Runs started and finished, run durations, queue depths and scheduler lag."""
    await _check_access(request, settings.api.metrics_open)
    body = await collect(sessions, redis, settings.queues.names())
    return Response(body, media_type=CONTENT_TYPE)
