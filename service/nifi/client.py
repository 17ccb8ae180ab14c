"""An async client for one NiFi instance: one ``aiohttp.ClientSession``, one token cache.

aiohttp, not httpx, because a check fans out over many clusters from one event loop:
its C HTTP parser costs about a third of httpx's CPU per request, and that CPU is what
limits how many requests a worker keeps in flight.

Failures are sorted by what helps next: connection errors and 5xx are retried with
backoff; 409 and 503 mean the node is not ready (no retry, the cluster call moves on);
TLS failures are named (:mod:`service.nifi.tls_errors`) and never retried.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from service.db.nifi_models import AuthMode
from service.nifi.endpoints import NifiEndpoint
from service.nifi.errors import (
    NifiAuthError,
    NifiNodeNotReady,
    NifiRequestError,
    NifiTlsError,
    NifiTlsSetupError,
    NifiUnavailable,
)
from service.nifi.resources import SharedResources
from service.nifi.responses import NifiAbout, NifiResponse, describe, detail, fetch
from service.nifi.status import (
    ProcessGroupState,
    QueueStatus,
    parse_process_group,
    parse_process_groups,
    parse_queue_status,
)
from service.nifi.tls import TlsSettings
from service.nifi.tls_errors import ProbeTarget, diagnose, from_client_error
from service.nifi.tokens import (
    AccessToken,
    LoginUnavailable,
    OidcProvider,
    login_with_client_credentials,
    login_with_password,
)

logger = logging.getLogger(__name__)

# Failures of the connection itself: retried on the same instance with backoff. A read
# timeout is not: waiting again would only delay the move to another cluster member.
_RETRYABLE = (aiohttp.ClientConnectionError,)
_NOT_RETRYABLE = (aiohttp.ServerTimeoutError, TimeoutError)
_TOKEN_MODES = (AuthMode.USERNAME_PASSWORD, AuthMode.OIDC_CLIENT_CREDENTIALS)
# The node is there but cannot serve: initializing its flow, a cluster-state conflict,
# or overloaded. Asking it again at once only delays the move to another member.
_NOT_READY = (409, 503)
_URL_CACHE_SIZE = 64
# The TLS diagnosis after a dropped connection waits this much beyond the connect timeout.
_PROBE_GRACE = 2.0


class NifiClient:
    """Talks to one instance. Get it from a :class:`~service.nifi.pool.NifiClientPool`;
    the pool closes it — at once when its endpoint changes while it is idle, else after
    its last request in flight."""

    def __init__(self, endpoint: NifiEndpoint, resources: SharedResources) -> None:
        self.endpoint = endpoint
        self._resources = resources
        self._http: aiohttp.ClientSession | None = None
        self._http_lock = asyncio.Lock()
        self._token: AccessToken | None = None
        self._token_lock = asyncio.Lock()
        self.login_count = 0
        self._base = endpoint.url.rstrip("/") + "/"
        self._urls: dict[tuple[str, tuple[tuple[str, str], ...]], URL] = {}
        self._proxy = resources.proxy_for(endpoint, endpoint.url)
        self._in_flight = 0
        self._retired = False

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def closed(self) -> bool:
        return self._http is None

    def retire(self) -> bool:
        """No new work comes to this client (its endpoint changed); True when it is idle
        and should be closed now, else its last request closes it."""
        self._retired = True
        return self._in_flight == 0

    async def close_if_idle(self) -> None:
        """Close unless a request began meanwhile (that request closes it when it ends)."""
        if self._in_flight == 0:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections (the pool does this)."""
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()

    async def _client(self) -> aiohttp.ClientSession:
        if self._http is not None:
            return self._http
        async with self._http_lock:
            if self._http is None:
                self._http = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=await self._ssl()),
                    timeout=aiohttp.ClientTimeout(
                        total=None,
                        sock_connect=self.endpoint.connect_timeout,
                        sock_read=self.endpoint.read_timeout,
                    ),
                    # Deterministic behaviour: no proxies or netrc picked up from the host.
                    trust_env=False,
                )
            return self._http

    async def _ssl(self) -> Any:
        # Plain HTTP needs no trust store; loading one would only cost time.
        if not self.endpoint.is_tls:
            return False
        return await self._tls_context(TlsSettings.for_instance(self.endpoint))

    async def _tls_context(self, settings: TlsSettings) -> ssl.SSLContext:
        try:
            return await self._resources.tls.get(settings)
        except OSError as exc:
            raise NifiTlsSetupError(f"TLS set-up failed for {self.name}: {exc}") from exc

    async def _valid_token(self, http: aiohttp.ClientSession) -> AccessToken:
        token = self._token
        if token is not None and token.is_fresh(self._resources.clock()):
            return token
        async with self._token_lock:
            token = self._token
            if token is None or not token.is_fresh(self._resources.clock()):
                token = await self._login(http)
                self._token = token
            return token

    async def _login(self, http: aiohttp.ClientSession) -> AccessToken:
        self.login_count += 1
        now = self._resources.clock()
        if self.endpoint.auth is AuthMode.USERNAME_PASSWORD:
            return await login_with_password(
                http, self._url("access/token", None), self.endpoint, now, proxy=self._proxy
            )
        resources = self._resources
        idp = await resources.idp_http(self.endpoint)

        async def token_from(provider: OidcProvider) -> AccessToken:
            proxy = resources.proxy_for(self.endpoint, provider.token_endpoint)
            try:
                return await login_with_client_credentials(
                    idp, provider, self.endpoint, now, proxy=proxy
                )
            except aiohttp.ClientSSLError as exc:
                # The identity provider's TLS, not the node's: say so.
                error = from_client_error(exc)
                raise NifiTlsError(
                    f"{self.name}: OIDC provider {error.message}", kind=error.kind
                ) from exc

        provider = await resources.oidc_provider(self.endpoint)
        try:
            return await token_from(provider)
        except (NifiAuthError, LoginUnavailable, aiohttp.ClientError):
            # The provider may have moved its token endpoint: read discovery again and,
            # when it says something new, try once more.
            fresh = await resources.oidc_provider(self.endpoint, refresh=True)
            if fresh == provider:
                raise
            logger.info("OIDC discovery changed, token requested again", extra=self._extra())
            return await token_from(fresh)

    def _drop_token(self, token: AccessToken) -> None:
        # Only the token that was refused: a concurrent request may have renewed it already.
        if self._token is token:
            self._token = None

    def _url(self, path: str, params: Mapping[str, str] | None) -> URL:
        # Building a URL is a visible share of a request's cost; the few paths a check
        # uses are built once per client.
        key = (path, tuple(sorted(params.items())) if params else ())
        url = self._urls.get(key)
        if url is None:
            url = URL(self._base + path)
            if params:
                url = url.update_query(params)
            if len(self._urls) < _URL_CACHE_SIZE:
                self._urls[key] = url
        return url

    async def _send(
        self, http: aiohttp.ClientSession, method: str, path: str, params: Mapping[str, str] | None
    ) -> NifiResponse:
        url = self._url(path, params)
        proxy = self._proxy
        if self.endpoint.auth not in _TOKEN_MODES:
            response = await fetch(http, method, url, None, proxy)
        else:
            token = await self._valid_token(http)
            response = await fetch(http, method, url, token, proxy)
            if response.status_code == 401:
                logger.info("NiFi refused the token, logging in again", extra=self._extra())
                self._drop_token(token)
                token = await self._valid_token(http)
                response = await fetch(http, method, url, token, proxy)
        if response.status_code in (401, 403):
            raise NifiAuthError(f"{self.name}: {method} {path} answered {response.status_code}")
        return response

    async def request(
        self, method: str, path: str, params: Mapping[str, str] | None = None
    ) -> NifiResponse:
        """Send one request (path relative to the API root) with authentication,
        bounded retries and backoff. Raises :class:`NifiNodeNotReady` on 409/503,
        :class:`NifiTlsError` when TLS fails, :class:`NifiUnavailable` when the
        instance does not answer usefully, :class:`NifiAuthError` when it refuses us."""
        self._in_flight += 1
        try:
            return await self._request(method, path, params)
        finally:
            self._in_flight -= 1
            if self._retired and self._in_flight == 0:
                await self.aclose()

    async def _request(
        self, method: str, path: str, params: Mapping[str, str] | None
    ) -> NifiResponse:
        http = await self._client()
        policy = self._resources.retry
        failure: NifiUnavailable | None = None
        for attempt in range(1, policy.attempts + 1):
            try:
                response = await self._send(http, method, path, params)
            except aiohttp.ClientSSLError as exc:
                raise self._named(from_client_error(exc)) from exc
            except aiohttp.ConnectionTimeoutError as exc:
                failure = NifiUnavailable(f"{self.name}: {describe(exc)}")
            except _NOT_RETRYABLE as exc:
                raise NifiUnavailable(f"{self.name}: {describe(exc)}") from exc
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # A connection refused before TLS began is the network's; one dropped
                # on a TLS endpoint may be the server refusing our certificate.
                if not isinstance(exc, aiohttp.ClientConnectorError):
                    tls = await self._diagnose_tls()
                    if tls is not None:
                        raise tls from exc
                failure = NifiUnavailable(f"{self.name}: {describe(exc)}")
            except _RETRYABLE as exc:
                failure = NifiUnavailable(f"{self.name}: {describe(exc)}")
            except LoginUnavailable as exc:
                failure = NifiUnavailable(f"{self.name}: {exc}")
            except aiohttp.ClientError as exc:
                raise NifiUnavailable(f"{self.name}: {describe(exc)}") from exc
            else:
                status = response.status_code
                if status in _NOT_READY:
                    raise NifiNodeNotReady(
                        f"{self.name}: {method} {path} answered HTTP {status}" + detail(response),
                        status_code=status,
                    )
                if status < 500:
                    return response
                failure = NifiUnavailable(f"{self.name}: {method} {path} answered HTTP {status}")
            if attempt < policy.attempts:
                delay = policy.delay(attempt, random.random())
                logger.debug(
                    "NiFi request failed (%s), retrying in %.2fs",
                    failure,
                    delay,
                    extra=self._extra(),
                )
                await asyncio.sleep(delay)
        assert failure is not None
        raise failure

    def _named(self, error: NifiTlsError) -> NifiTlsError:
        return NifiTlsError(f"{self.name}: {error.message}", kind=error.kind)

    async def _diagnose_tls(self) -> NifiTlsError | None:
        """On a TLS endpoint reached directly: what a fresh handshake says."""
        endpoint = self.endpoint
        if not endpoint.is_tls or self._proxy is not None:
            return None
        url = URL(endpoint.url)
        settings = TlsSettings.for_instance(endpoint)
        target = ProbeTarget(
            host=url.host or "",
            port=url.port or 443,
            context=await self._tls_context(settings),
            has_client_identity=settings.has_client_identity,
            wait=endpoint.connect_timeout + _PROBE_GRACE,
        )
        error = await diagnose(target)
        return None if error is None else self._named(error)

    async def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """``GET`` a JSON document; 4xx answers raise :class:`NifiRequestError`."""
        response = await self.request("GET", path, params)
        if response.status_code >= 400:
            raise NifiRequestError(
                f"{self.name}: GET {path} answered HTTP {response.status_code}" + detail(response),
                status_code=response.status_code,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise NifiRequestError(f"{self.name}: GET {path} did not answer JSON") from exc

    async def about(self) -> NifiAbout:
        """``GET /flow/about``."""
        body = await self.get_json("flow/about")
        about = body.get("about") if isinstance(body, dict) else None
        if not isinstance(about, dict):
            raise NifiRequestError(f"{self.name}: flow/about has no 'about'")
        return NifiAbout(title=str(about.get("title") or ""), version=str(about.get("version")))

    async def queue_status(self, *, nodewise: bool = False) -> QueueStatus:
        """Every connection's queue on the canvas, from one
        ``GET /flow/process-groups/root/status?recursive=true`` (``&nodewise=true``
        adds each node's view on a cluster)."""
        params = {"recursive": "true", "nodewise": "true"} if nodewise else {"recursive": "true"}
        body = await self.get_json("flow/process-groups/root/status", params)
        if not isinstance(body, dict):
            raise NifiRequestError(f"{self.name}: status answer is not an object")
        return parse_queue_status(body)

    async def process_group(self, group_id: str) -> ProcessGroupState:
        """``GET /process-groups/{id}``."""
        body = await self.get_json(f"process-groups/{quote(group_id, safe='')}")
        if not isinstance(body, dict):
            raise NifiRequestError(f"{self.name}: process group answer is not an object")
        return parse_process_group(body)

    async def child_process_groups(self, group_id: str) -> list[ProcessGroupState]:
        """``GET /process-groups/{id}/process-groups``: the direct children."""
        body = await self.get_json(f"process-groups/{quote(group_id, safe='')}/process-groups")
        if not isinstance(body, dict):
            raise NifiRequestError(f"{self.name}: process group listing is not an object")
        return parse_process_groups(body)

    def _extra(self) -> dict[str, str]:
        return {"nifi_instance": self.name}
