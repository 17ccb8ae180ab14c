"""The lab's ASGI app: NiFi REST endpoints per instance, an OIDC provider and the lab's
own control endpoints.

On the shared server instances live under ``/i/{instance}/nifi-api``; a dedicated
server serves one instance under ``/nifi-api``. Each instance request first suffers
the instance's latency and injected failure, then authentication, then the node's
readiness: a node initializing its flow answers 409 as NiFi does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from lab import nifi_render as render
from lab.nifi_bulletins import BulletinLog, board_entity
from lab.nifi_cluster import NOT_CONNECTED, cluster_entity, summary_entity
from lab.nifi_control import control_routes
from lab.nifi_instance import FailureMode, LabInstance
from lab.nifi_oidc import OidcProvider, form_fields
from lab.nifi_topology import LabProcessGroup, total_values

if TYPE_CHECKING:
    from lab.nifi import NifiLab

SHARED_PREFIX = "/i/{instance}/nifi-api"
DEDICATED_PREFIX = "/nifi-api"
_UNAVAILABLE = "Service Unavailable"
_UNEXPECTED = "An unexpected error has occurred. Please check the logs for additional details."
INITIALIZING = "The Flow Controller is initializing the Data Flow."

Handler = Callable[[Request, LabInstance], Awaitable[Response]]


def _unauthorized() -> Response:
    return PlainTextResponse("Unable to validate the access token.", status_code=401)


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
        if authenticate and instance.not_ready:
            return PlainTextResponse(INITIALIZING, status_code=409)
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
        form = await form_fields(request)
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


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def _api_port(request: Request) -> int:
    return request.url.port or 0


@_group_view
def _status(request: Request, instance: LabInstance, group: LabProcessGroup) -> Response:
    cluster = instance.cluster
    view: render.QueueView = total_values
    node_views: list[tuple[str, str, int, render.QueueView]] = []
    if cluster is not None and instance.connected:
        view = cluster.merged_values
        if _flag(request, "nodewise"):
            node_views = [
                (
                    member.node_id,
                    member.address,
                    _api_port(request),
                    partial(cluster.node_values, member=member),
                )
                for member in cluster.connected
            ]
    elif cluster is not None:
        # A node out of its cluster answers from its own share of the flow.
        view = partial(cluster.node_values, member=instance)
    return JSONResponse(
        render.status_entity(
            group,
            recursive=_flag(request, "recursive"),
            numeric=instance.numeric_queue_fields,
            view=view,
            node_views=node_views,
        )
    )


async def _cluster_summary(request: Request, instance: LabInstance) -> Response:
    return JSONResponse(summary_entity(instance))


async def _cluster(request: Request, instance: LabInstance) -> Response:
    cluster = instance.cluster
    if cluster is None or not instance.connected:
        return PlainTextResponse(NOT_CONNECTED, status_code=404)
    return JSONResponse(cluster_entity(cluster, _api_port(request)))


async def _bulletin_board(request: Request, instance: LabInstance) -> Response:
    cluster = instance.cluster
    sources: list[tuple[str | None, BulletinLog]]
    if cluster is None:
        sources = [(None, instance.bulletins)]
    elif instance.connected:
        sources = [(member.address, member.bulletins) for member in cluster.connected]
    else:
        sources = [(instance.address, instance.bulletins)]
    return JSONResponse(board_entity(sources, dict(request.query_params)))


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
        Route(f"{prefix}/flow/cluster/summary", api.endpoint(_cluster_summary)),
        Route(f"{prefix}/controller/cluster", api.endpoint(_cluster)),
        Route(f"{prefix}/flow/bulletin-board", api.endpoint(_bulletin_board)),
        Route(f"{flow_groups}/status", api.endpoint(_status)),
        Route(flow_groups, api.endpoint(_flow)),
        Route(groups, api.endpoint(_process_group)),
        Route(f"{groups}/process-groups", api.endpoint(_child_groups)),
        Route(f"{groups}/connections", api.endpoint(_connections)),
    ]
    if instance is None:
        routes += OidcProvider(lab).routes() + control_routes(lab)
    return Starlette(routes=routes)
