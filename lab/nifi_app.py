"""The lab's ASGI app: NiFi REST endpoints per instance and an OIDC provider.

On the shared server instances live under ``/i/{instance}/nifi-api``; a dedicated
server serves one instance under ``/nifi-api``. Each instance request first suffers
the instance's latency and injected failure, then authentication.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from lab import nifi_render as render
from lab.nifi_instance import FailureMode, LabInstance
from lab.nifi_topology import LabProcessGroup

if TYPE_CHECKING:
    from lab.nifi import NifiLab

SHARED_PREFIX = "/i/{instance}/nifi-api"
DEDICATED_PREFIX = "/nifi-api"
_UNAVAILABLE = "Service Unavailable"
_UNEXPECTED = "An unexpected error has occurred. Please check the logs for additional details."

Handler = Callable[[Request, LabInstance], Awaitable[Response]]


def _unauthorized() -> Response:
    return PlainTextResponse("Unable to validate the access token.", status_code=401)


async def _form(request: Request) -> dict[str, str]:
    # application/x-www-form-urlencoded, parsed by hand: no multipart dependency.
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


class _NifiApi:
    def __init__(self, lab: NifiLab, instance: str | None, client_cert_trusted: bool) -> None:
        self._lab = lab
        self._fixed = instance
        self._trusted = client_cert_trusted

    async def _admit(self, request: Request, *, authenticate: bool) -> LabInstance | Response:
        name = self._fixed or request.path_params["instance"]
        instance = self._lab.instances.get(name)
        if instance is None:
            return PlainTextResponse(f"Unknown NiFi instance {name}.", status_code=404)
        instance.request_count += 1
        if instance.latency > 0:
            await asyncio.sleep(instance.latency)
        failure = instance.next_failure()
        if failure is FailureMode.DOWN:
            return PlainTextResponse(_UNAVAILABLE, status_code=503)
        if failure is FailureMode.HANG:
            await self._lab.wait_closing()
            return PlainTextResponse(_UNAVAILABLE, status_code=503)
        if failure is FailureMode.ERROR:
            return PlainTextResponse(_UNEXPECTED, status_code=500)
        if failure is FailureMode.UNAUTHORIZED:
            return _unauthorized()
        if authenticate and not self._authenticated(request, instance):
            return _unauthorized()
        return instance

    def _authenticated(self, request: Request, instance: LabInstance) -> bool:
        if instance.anonymous or self._trusted:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self._lab.token_accepted(token.strip(), instance)

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            admitted = await self._admit(request, authenticate=True)
            if isinstance(admitted, Response):
                return admitted
            return await handler(request, admitted)

        return serve

    async def access_token(self, request: Request) -> Response:
        admitted = await self._admit(request, authenticate=False)
        if isinstance(admitted, Response):
            return admitted
        if not admitted.users:
            return PlainTextResponse(
                "Username/Password login not supported by this NiFi.", status_code=409
            )
        form = await _form(request)
        username, password = form.get("username", ""), form.get("password", "")
        if not username or admitted.users.get(username) != password:
            return PlainTextResponse(
                "The supplied username and password are not valid.", status_code=400
            )
        admitted.login_count += 1
        token = self._lab.issue_token(admitted.name, username, self._lab.token_lifetime)
        return PlainTextResponse(token, status_code=201)


def _group_or_404(instance: LabInstance, group_id: str) -> LabProcessGroup | Response:
    group = instance.flow.group(group_id)
    if group is None:
        return PlainTextResponse(f"Unable to locate group with id '{group_id}'.", status_code=404)
    return group


def _group_view(
    render_group: Callable[[Request, LabInstance, LabProcessGroup], Response],
) -> Handler:
    async def view(request: Request, instance: LabInstance) -> Response:
        group = _group_or_404(instance, request.path_params["group_id"])
        if isinstance(group, Response):
            return group
        return render_group(request, instance, group)

    return view


async def _about(request: Request, instance: LabInstance) -> Response:
    return JSONResponse(render.about_entity(instance.version, instance.url))


@_group_view
def _status(request: Request, instance: LabInstance, group: LabProcessGroup) -> Response:
    recursive = request.query_params.get("recursive", "false").lower() == "true"
    return JSONResponse(
        render.status_entity(group, recursive=recursive, numeric=instance.numeric_queue_fields)
    )


@_group_view
def _flow(request: Request, instance: LabInstance, group: LabProcessGroup) -> Response:
    return JSONResponse(render.flow_entity(group, instance.url))


@_group_view
def _process_group(request: Request, instance: LabInstance, group: LabProcessGroup) -> Response:
    return JSONResponse(render.process_group_entity(group, instance.url))


@_group_view
def _child_groups(request: Request, instance: LabInstance, group: LabProcessGroup) -> Response:
    return JSONResponse(render.process_groups_entity(group, instance.url))


@_group_view
def _connections(request: Request, instance: LabInstance, group: LabProcessGroup) -> Response:
    return JSONResponse(render.connections_entity(group, instance.url))


class _OidcProvider:
    def __init__(self, lab: NifiLab) -> None:
        self._lab = lab

    async def discovery(self, request: Request) -> Response:
        issuer = f"{self._lab.base_url}/realms/{request.path_params['realm']}"
        return JSONResponse(
            {
                "issuer": issuer,
                "authorization_endpoint": f"{issuer}/protocol/openid-connect/auth",
                "token_endpoint": f"{issuer}/protocol/openid-connect/token",
                "jwks_uri": f"{issuer}/protocol/openid-connect/certs",
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
            }
        )

    async def token(self, request: Request) -> Response:
        form = await _form(request)
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        credentials = _basic_credentials(request) or (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
        client_id, secret = credentials
        if not client_id or self._lab.oidc_clients.get(client_id) != secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        self._lab.oidc_token_count += 1
        lifetime = self._lab.oidc_token_lifetime
        return JSONResponse(
            {
                "access_token": self._lab.issue_token(None, client_id, lifetime),
                "expires_in": lifetime,
                "refresh_expires_in": 0,
                "token_type": "Bearer",
                "not-before-policy": 0,
                "scope": "profile email",
            }
        )


def build_app(
    lab: NifiLab, *, instance: str | None = None, client_cert_trusted: bool = False
) -> Starlette:
    """The shared app (``instance`` None: every instance under ``/i/{name}``, plus the
    OIDC provider) or the app of one instance's dedicated server."""
    api = _NifiApi(lab, instance, client_cert_trusted)
    prefix = DEDICATED_PREFIX if instance else SHARED_PREFIX
    groups = f"{prefix}/process-groups/{{group_id}}"
    flow_groups = f"{prefix}/flow/process-groups/{{group_id}}"
    routes = [
        Route(f"{prefix}/access/token", api.access_token, methods=["POST"]),
        Route(f"{prefix}/flow/about", api.endpoint(_about)),
        Route(f"{flow_groups}/status", api.endpoint(_status)),
        Route(flow_groups, api.endpoint(_flow)),
        Route(groups, api.endpoint(_process_group)),
        Route(f"{groups}/process-groups", api.endpoint(_child_groups)),
        Route(f"{groups}/connections", api.endpoint(_connections)),
    ]
    if instance is None:
        provider = _OidcProvider(lab)
        realm = "/realms/{realm}"
        routes += [
            Route(f"{realm}/.well-known/openid-configuration", provider.discovery),
            Route(f"{realm}/protocol/openid-connect/token", provider.token, methods=["POST"]),
        ]
    return Starlette(routes=routes)
