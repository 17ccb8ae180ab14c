"""Calls to the opsjobs API with every failure turned into one line and an exit code.

401/403, connection failures, timeouts and 5xx answers exit 3; any other 4xx exits 2 with
the API's message and the fields it names. Requests that create runs carry an
``Idempotency-Key`` (one per logical request) and are retried on a dropped connection or a
502/503/504, so a retry never queues a second run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from service import service_version
from service.client.config import URL_ENV, Login
from service.client.errors import CliError, ExitCode

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_DELAYS_S = (0.5, 1.0, 2.0)
# The API sends a keep-alive comment every 15 s by default (api.events_heartbeat).
STREAM_READ_TIMEOUT_S = 60.0
_RETRYABLE_ERRORS = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc).lower()
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    if "temporary failure in name resolution" in text:
        return "unknown host"
    return str(exc) or type(exc).__name__


def unreachable(url: str, exc: httpx.TransportError) -> CliError:
    return CliError(
        f"cannot reach the API at {url} (set {URL_ENV} or run opsjobs login): {_reason(exc)}",
        ExitCode.UNREACHABLE,
    )


def _error_fields(answer: httpx.Response) -> tuple[str, list[str]]:
    try:
        body = answer.json()
    except ValueError:
        return answer.text.strip()[:200] or answer.reason_phrase, []
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return str(body)[:200], []
    fields = []
    details = error.get("details")
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and "loc" in item:
                loc = ".".join(str(part) for part in item["loc"])
                fields.append(f"{loc}: {item.get('msg', '')}")
    return str(error.get("message", "")), fields


def answer_error(url: str, answer: httpx.Response) -> CliError:
    message, fields = _error_fields(answer)
    if fields:
        message = f"{message} ({'; '.join(fields)})"
    status = answer.status_code
    if status in (401, 403):
        hint = " (set OPSJOBS_TOKEN or run opsjobs login)" if status == 401 else ""
        return CliError(
            f"not authorised by the API at {url}: {message}{hint}", ExitCode.UNREACHABLE
        )
    if status >= 500:
        return CliError(f"the API at {url} failed ({status}): {message}", ExitCode.UNREACHABLE)
    return CliError(message or f"the API refused the request ({status})", ExitCode.USAGE)


class Api:
    """One logged-in API; each method returns the decoded JSON of a 2xx answer."""

    def __init__(self, login: Login) -> None:
        self.url = login.url
        self._http = httpx.Client(
            base_url=login.url,
            headers={
                "Authorization": f"Bearer {login.token}",
                "User-Agent": f"opsjobs-cli/{service_version()}",
            },
            timeout=TIMEOUT,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        query = {key: value for key, value in (params or {}).items() if value is not None}
        try:
            return self._http.request(method, path, params=query, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise unreachable(self.url, exc) from None

    def _checked(self, answer: httpx.Response) -> Any:
        if answer.is_success:
            return answer.json() if answer.content else None
        raise answer_error(self.url, answer)

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._checked(self._send("GET", path, params=params))

    def put(self, path: str, body: Any) -> Any:
        return self._checked(self._send("PUT", path, body=body))

    def delete(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._checked(self._send("DELETE", path, params=params))

    def post(self, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        return self._checked(self._send("POST", path, params=params, body=body))

    def create_run(
        self, path: str, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """A POST that queues a run: retried with the same ``Idempotency-Key`` on a dropped
        connection or a 502/503/504 (201 and 202 both mean queued)."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        query = {key: value for key, value in (params or {}).items() if value is not None}
        for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
            try:
                answer = self._http.post(path, params=query, json=body, headers=headers)
            except _RETRYABLE_ERRORS as exc:
                # Refused at connect time on the first try: nothing is listening, say so now.
                if delay is None or (attempt == 0 and isinstance(exc, httpx.ConnectError)):
                    raise unreachable(self.url, exc) from None
            except httpx.TransportError as exc:
                raise unreachable(self.url, exc) from None
            else:
                if answer.status_code not in RETRY_STATUSES or delay is None:
                    return self._checked(answer)
            time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def stream(self, path: str, headers: Mapping[str, str]) -> Iterator[httpx.Response]:
        """A streamed GET; the event stream sends a keep-alive well within the read timeout."""
        timeout = httpx.Timeout(STREAM_READ_TIMEOUT_S, connect=10.0)
        with self._http.stream("GET", path, headers=headers, timeout=timeout) as answer:
            if not answer.is_success:
                answer.read()
                raise answer_error(self.url, answer)
            yield answer
