"""The lab's OpenID Connect provider (Keycloak-like paths, client-credentials grant).

A client may be registered with a required ``scope`` (Entra ID's ``…/.default``) and a
required ``audience`` (Auth0, Keycloak deployments): a token request without them is
refused as those providers refuse it. The token endpoint can be moved
(:meth:`~lab.nifi.NifiLab.move_oidc_token_endpoint`) so that a client holding an old
discovery document meets a 404, as after a provider migration.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from lab.nifi import NifiLab


@dataclass(frozen=True, slots=True)
class OidcClient:
    secret: str
    scope: str | None = None
    audience: str | None = None


async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (parsed by hand: no multipart)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (unquote(user), unquote(password)) if sep else None


def _refused(error: str, description: str, status: int = 400) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


class OidcProvider:
    def __init__(self, lab: NifiLab) -> None:
        self._lab = lab

    def routes(self) -> list[Route]:
        realm = "/realms/{realm}"
        return [
            Route(f"{realm}/.well-known/openid-configuration", self.discovery),
            Route(f"{realm}/protocol/openid-connect/{{path}}", self.token, methods=["POST"]),
        ]

    async def discovery(self, request: Request) -> Response:
        self._lab.oidc_discovery_count += 1
        issuer = f"{self._lab.base_url}/realms/{request.path_params['realm']}"
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/protocol/openid-connect/auth",
                "token_endpoint": f"{issuer}/protocol/openid-connect/{self._lab.oidc_token_path}",
                "jwks_uri": f"{issuer}/protocol/openid-connect/certs",
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
            }
        )

    async def token(self, request: Request) -> Response:
        if request.path_params["path"] != self._lab.oidc_token_path:
            return JSONResponse({"error": "not_found"}, status_code=404)
        form = await form_fields(request)
        if form.get("grant_type") != "client_credentials":
            return _refused("unsupported_grant_type", "only client_credentials")
        client_id, secret = _basic_credentials(request) or (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
        client = self._lab.oidc_clients.get(client_id)
        if not client_id or client is None or client.secret != secret:
            return _refused("invalid_client", "client authentication failed", 401)
        scopes = form.get("scope", "").split()
        if client.scope is not None and client.scope not in scopes:
            return _refused("invalid_scope", f"scope {client.scope!r} is required")
        audience = form.get("audience")
        if client.audience is not None and audience != client.audience:
            return _refused("invalid_request", f"audience {client.audience!r} is required")
        self._lab.oidc_token_count += 1
        lifetime = self._lab.oidc_token_lifetime
        return JSONResponse(
            {
                "access_token": self._lab.issue_token(
                    None, client_id, lifetime, audience=audience, scope=" ".join(scopes)
                ),
                "expires_in": lifetime,
                "refresh_expires_in": 0,
                "token_type": "Bearer",
                "not-before-policy": 0,
                "scope": " ".join(scopes) or "profile email",
            }
        )
