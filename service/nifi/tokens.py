"""Access tokens for NiFi: username/password login and OIDC client credentials.

A token is reused until shortly before it expires (see :func:`refresh_at`); a 401
from NiFi makes the client drop it and log in once more.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from service.nifi.endpoints import NifiEndpoint
from service.nifi.errors import NifiAuthError, NifiRequestError

logger = logging.getLogger(__name__)

# Used when neither the token (a JWT ``exp``) nor the provider (``expires_in``) says
# how long it lives; a shorter guess only costs an extra login, a 401 covers the rest.
DEFAULT_TOKEN_LIFETIME = 300.0
# Renew this long before expiry, but never earlier than 90 % of the lifetime, so a
# short-lived token is still used for most of its life.
REFRESH_MARGIN = 60.0
REFRESH_FRACTION = 0.1


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str = field(repr=False)
    issued_at: float
    expires_at: float

    @property
    def refresh_at(self) -> float:
        """When to log in again instead of using this token."""
        return refresh_at(self.issued_at, self.expires_at)

    def is_fresh(self, now: float) -> bool:
        return now < self.refresh_at


def refresh_at(issued_at: float, expires_at: float) -> float:
    """The moment a token issued at ``issued_at`` and expiring at ``expires_at`` is
    renewed: ``min(REFRESH_MARGIN, REFRESH_FRACTION × lifetime)`` before it expires."""
    lifetime = max(0.0, expires_at - issued_at)
    return expires_at - min(REFRESH_MARGIN, REFRESH_FRACTION * lifetime)


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (read, not verified: NiFi verifies its own tokens)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(exp)
    return None


class LoginUnavailable(Exception):
    """A login or discovery answered 5xx: the server's trouble, not the credentials'; the
    client retries and fails over as for any unavailable answer."""

    def __init__(self, what: str, status: int) -> None:
        super().__init__(f"{what} answered HTTP {status}")


def _raise_for_login(status: int, what: str, endpoint: NifiEndpoint) -> None:
    if status >= 500:
        raise LoginUnavailable(what, status)
    if status >= 400:
        raise NifiAuthError(f"{endpoint.name}: {what} refused with HTTP {status}")


async def login_with_password(
    http: aiohttp.ClientSession,
    url: URL,
    endpoint: NifiEndpoint,
    now: float,
    *,
    proxy: str | None = None,
) -> AccessToken:
    """``POST /access/token`` (``url``) with the form fields ``username`` and ``password``;
    NiFi answers ``201`` with the JWT as plain text."""
    form = {"username": endpoint.username or "", "password": endpoint.password or ""}
    async with http.post(url, data=form, proxy=proxy) as response:
        status, body = response.status, await response.read()
    _raise_for_login(status, "login", endpoint)
    value = body.decode(errors="replace").strip()
    if not value:
        raise NifiAuthError(f"{endpoint.name}: login answered without a token")
    expires_at = jwt_expiry(value) or now + DEFAULT_TOKEN_LIFETIME
    logger.debug("NiFi login succeeded", extra={"nifi_instance": endpoint.name})
    return AccessToken(value=value, issued_at=now, expires_at=expires_at)


@dataclass(frozen=True, slots=True)
class OidcProvider:
    """What the discovery document says about getting a token."""

    token_endpoint: str
    auth_methods: tuple[str, ...]


async def discover_provider(
    http: aiohttp.ClientSession, discovery_url: str, *, proxy: str | None = None
) -> OidcProvider:
    """Read ``token_endpoint`` from the provider's ``/.well-known/openid-configuration``."""
    async with http.get(discovery_url, proxy=proxy) as response:
        status, body = response.status, await response.read()
    if status >= 500:
        raise LoginUnavailable("OIDC discovery", status)
    if status >= 400:
        raise NifiAuthError(f"OIDC discovery answered HTTP {status}")
    try:
        document: Any = json.loads(body)
    except ValueError as exc:
        raise NifiRequestError("OIDC discovery document is not JSON") from exc
    token_endpoint = document.get("token_endpoint") if isinstance(document, dict) else None
    if not isinstance(token_endpoint, str) or not token_endpoint:
        raise NifiAuthError("OIDC discovery document names no token_endpoint")
    methods = document.get("token_endpoint_auth_methods_supported") or ()
    return OidcProvider(
        token_endpoint=token_endpoint,
        auth_methods=tuple(m for m in methods if isinstance(m, str)),
    )


def _oauth_error(content: bytes) -> str:
    """``": invalid_scope"`` from an RFC 6749 error answer, so the operator sees which
    part of the request the provider refused (never the request itself)."""
    try:
        body: Any = json.loads(content)
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return f": {error}" if isinstance(error, str) and error.isidentifier() else ""


async def login_with_client_credentials(
    http: aiohttp.ClientSession,
    provider: OidcProvider,
    endpoint: NifiEndpoint,
    now: float,
    *,
    proxy: str | None = None,
) -> AccessToken:
    """OAuth 2 client-credentials grant at the provider's token endpoint, with the
    endpoint's ``scope`` (Entra ID: ``api://…/.default``) and ``audience`` (Auth0,
    Keycloak) when set.

    The client secret goes in the form body (``client_secret_post``) unless the
    provider only supports HTTP basic authentication.
    """
    client_id = endpoint.oidc_client_id or ""
    secret = endpoint.oidc_client_secret or ""
    form = {"grant_type": "client_credentials"}
    if endpoint.oidc_scope:
        form["scope"] = endpoint.oidc_scope
    if endpoint.oidc_audience:
        form["audience"] = endpoint.oidc_audience
    auth = None
    if provider.auth_methods and "client_secret_post" not in provider.auth_methods:
        auth = aiohttp.BasicAuth(client_id, secret)
    else:
        form |= {"client_id": client_id, "client_secret": secret}
    async with http.post(provider.token_endpoint, data=form, auth=auth, proxy=proxy) as response:
        status, content = response.status, await response.read()
    if 400 <= status < 500:
        raise NifiAuthError(
            f"{endpoint.name}: OIDC token request refused with HTTP {status}"
            + _oauth_error(content)
        )
    _raise_for_login(status, "OIDC token request", endpoint)
    try:
        body: Any = json.loads(content)
    except ValueError as exc:
        raise NifiAuthError(f"{endpoint.name}: OIDC token answer is not JSON") from exc
    value = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise NifiAuthError(f"{endpoint.name}: OIDC token answer has no access_token")
    expires_in = body.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        expires_at = now + float(expires_in)
    else:
        expires_at = jwt_expiry(value) or now + DEFAULT_TOKEN_LIFETIME
    logger.debug("OIDC token obtained", extra={"nifi_instance": endpoint.name})
    return AccessToken(value=value, issued_at=now, expires_at=expires_at)
