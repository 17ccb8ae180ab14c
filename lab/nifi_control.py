"""The lab's own control endpoints, on the shared server beside the simulated NiFi API:
change a node's state while checks run, and post bulletins.

``GET /lab/nodes`` lists the nodes; ``POST /lab/nodes/{name}`` with
``{"state": "DISCONNECTED"}`` (any NiFi node state) and/or ``{"initializing": true}``
(answer 409 to API requests) changes one; ``POST /lab/nodes/{name}/bulletins`` with
``{"level", "message", "source_name", "source_id", "group_id", "category"}`` posts one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lab.nifi_bulletins import LEVELS, bulletin_entity
from lab.nifi_instance import LabInstance, NodeState

if TYPE_CHECKING:
    from lab.nifi import NifiLab

_BULLETIN_FIELDS = ("source_name", "source_id", "group_id", "category")


def _node(instance: LabInstance) -> dict[str, Any]:
    return {
        "name": instance.name,
        "cluster": instance.cluster.name if instance.cluster else None,
        "state": instance.state.value,
        "initializing": instance.initializing,
        "url": instance.served_at,
    }


def _problem(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def control_routes(lab: NifiLab) -> list[Route]:
    """The ``/lab/nodes`` routes acting on ``lab``."""

    async def list_nodes(request: Request) -> Response:
        return JSONResponse({"nodes": [_node(i) for i in lab.instances.values()]})

    async def change_node(request: Request) -> Response:
        instance = lab.instances.get(request.path_params["name"])
        if instance is None:
            return _problem(404, "no such node")
        body = await _json_object(request)
        if body is None:
            return _problem(422, "a JSON object is expected")
        state = body.get("state")
        if state is not None and state not in NodeState.__members__:
            return _problem(422, f"state must be one of {', '.join(NodeState)}")
        initializing = body.get("initializing")
        if initializing is not None and not isinstance(initializing, bool):
            return _problem(422, "initializing must be true or false")
        if state is not None:
            instance.state = NodeState(state)
        if initializing is not None:
            instance.initializing = initializing
        return JSONResponse(_node(instance))

    async def post_bulletin(request: Request) -> Response:
        instance = lab.instances.get(request.path_params["name"])
        if instance is None:
            return _problem(404, "no such node")
        body = await _json_object(request)
        if body is None or not isinstance(body.get("message"), str):
            return _problem(422, "a JSON object with a message is expected")
        level = body.get("level", "ERROR")
        if level not in LEVELS:
            return _problem(422, f"level must be one of {', '.join(LEVELS)}")
        text = {key: str(body[key]) for key in _BULLETIN_FIELDS if body.get(key) is not None}
        bulletin = instance.bulletins.post(
            level=level,
            message=body["message"],
            source_name=text.get("source_name", "LogAttribute"),
            source_id=text.get("source_id", ""),
            group_id=text.get("group_id"),
            category=text.get("category", "Log Message"),
        )
        address = instance.address if instance.cluster else None
        return JSONResponse(bulletin_entity(bulletin, address), status_code=201)

    return [
        Route("/lab/nodes", list_nodes),
        Route("/lab/nodes/{name}", change_node, methods=["POST"]),
        Route("/lab/nodes/{name}/bulletins", post_bulletin, methods=["POST"]),
    ]
