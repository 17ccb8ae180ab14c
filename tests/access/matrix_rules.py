"""What every operation that takes a resource id expects from each role.

One :class:`Rule` per operation: how to call it with alice's resource in a given slot
(path, query filter, body field, or a field of ``parameters``/``config``), its success
status, and what the shared resources answer others. The expected status per role
follows from the rule (:func:`expected`): anonymous 401; a viewer 403 on writes; admin
and owner succeed; another operator gets 404 for a private resource in the path, 422
for one named in a body or in parameters (it does not exist for them), 403 for using a
shared resource that holds alice's credential, and lists without her rows.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from executors.services import Services
from tests.access.world import (
    DEVICE_ID,
    World,
    add_channel,
    add_rule,
    add_schedule,
    add_template,
    add_window,
    unique,
)

HOLDERS = frozenset({"git_repository", "nifi_instance", "nifi_cluster"})
#: Parameters per job type naming only resources everybody may use.
BASE_PARAMETERS: dict[str, Callable[[World], dict[str, Any]]] = {
    "run_commands": lambda w: {
        "targets": {"inventory_id": w.shared["inventory"]},
        "command_template_id": w.shared["command_template"],
        "credential_id": w.shared["credential"],
    },
    "backup": lambda w: {
        "targets": {"inventory_id": w.shared["inventory"]},
        "repository_id": w.shared["git_repository"],
        "credential_id": w.shared["credential"],
    },
    "check_queues": lambda w: {"cluster_ids": [w.shared["nifi_cluster"]]},
    "check_process_group": lambda w: {
        "cluster_id": w.shared["nifi_cluster"],
        "process_group_id": "root",
    },
    "check_cluster": lambda w: {"cluster_ids": [w.shared["nifi_cluster"]]},
    "check_bulletins": lambda w: {"cluster_ids": [w.shared["nifi_cluster"]]},
    # Notification channels' configs, by channel type.
    "email": lambda w: dict(EMAIL),
}
EMAIL = {
    "host": "127.0.0.1",
    "port": 9,
    "security": "none",
    "from_address": "opsjobs@example.net",
    "to": ["oncall@example.net"],
}
#: Which of alice's resources fills a slot whose kind alone does not say (an email
#: channel takes a username/password credential).
SLOT_VALUES = {("email", "credential"): "nifi_credential"}


@dataclass(frozen=True)
class Slot:
    """Where an operation takes a resource id: ``place`` is path, query, body or
    parameters (a field of the job type's Config, ``loc`` inside it)."""

    place: str
    kind: str
    loc: tuple[str | int, ...]
    job_type: str | None = None
    listed: bool = False
    every: bool = False

    def label(self) -> str:
        where = ".".join(str(part) for part in self.loc)
        extra = f"[{self.job_type}]" if self.job_type else ""
        return f"{self.place}{extra}:{where}{' (all)' if self.every else ''}"


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    params: dict[str, Any] | None = None
    json: Any = None


@dataclass(frozen=True)
class Case:
    """What a builder may use: the world, the stores and who calls."""

    services: Services
    world: World
    role: str
    username: str


Builder = Callable[[Case, Slot], Awaitable[Call]]


@dataclass(frozen=True)
class Rule:
    success: int
    build: Builder
    write: bool = True
    admin_only: bool = False
    #: A shared resource in the path holding alice's credential: another operator's answer.
    other_holder: int | None = None
    #: Where errors locate a ``parameters``/``config`` slot.
    params_loc: tuple[str, ...] = ()
    #: Filters: whether alice's row is in the answer, and the status of those who may not
    #: see it; ``shown_to_all`` for shared rows.
    shown: Callable[[Any, World], bool] | None = None
    hidden_status: int = 200
    shown_to_all: bool = False
    #: The call reads alice's repository checkout (made only for these rules).
    checkout: bool = False


def expected(rule: Rule, slot: Slot, role: str) -> int:
    """The status ``role`` gets from ``rule``'s operation with alice's resource in ``slot``."""
    if role == "anonymous":
        return 401
    if role == "viewer" and rule.write:
        return 403
    if rule.admin_only and role != "admin":
        return 403
    if role in ("admin", "owner"):
        return rule.success
    if slot.place == "query":
        return rule.success if rule.shown_to_all else rule.hidden_status
    if slot.place == "path":
        if slot.kind in HOLDERS:
            assert rule.other_holder is not None, "a rule for a shared resource says its answer"
            return rule.other_holder if role == "other" else rule.success
        return 404
    return 403 if slot.kind in HOLDERS else 422


def error_loc(rule: Rule, slot: Slot) -> list[str | int]:
    """Where a refusal of a body or parameters slot is located."""
    if slot.place == "body":
        return ["body", *slot.loc, *((0,) if slot.listed else ())]
    suffix: tuple[str | int, ...] = (0,) if slot.listed and not slot.every else ()
    return [*rule.params_loc, *slot.loc, *suffix]


def mine(case: Case, slot: Slot) -> int:
    return case.world.mine[slot.kind]


def parameters_with(world: World, slot: Slot) -> dict[str, Any]:
    """Valid parameters of the slot's job type, alice's resource in the slot."""
    assert slot.job_type is not None
    params = copy.deepcopy(BASE_PARAMETERS[slot.job_type](world))
    target = params
    for part in slot.loc[:-1]:
        target = target.setdefault(str(part), {})
    name = str(slot.loc[-1])
    if slot.every:
        target[name] = None  # null wins over the template's value: every resource
    else:
        value = world.mine[SLOT_VALUES.get((slot.job_type, slot.kind), slot.kind)]
        target[name] = [value] if slot.listed else value
    return params


def _base(world: World, slot: Slot) -> dict[str, Any]:
    assert slot.job_type is not None
    return BASE_PARAMETERS[slot.job_type](world)


def _path(template: str) -> Builder:
    """GET-like calls: alice's resource in the path, nothing else."""

    async def build(case: Case, slot: Slot) -> Call:
        method, url = template.split(" ", 1)
        return Call(method, url.format(id=mine(case, slot)) if "{id}" in url else url)

    return build


def _read_change_delete(path: str) -> dict[tuple[str, str], Rule]:
    """GET, PATCH (of the description) and DELETE of an owned resource at ``path``."""
    url = path.rsplit("/", 1)[0] + "/{id}"

    async def describe(case: Case, slot: Slot) -> Call:
        return Call("PATCH", url.format(id=mine(case, slot)), json={"description": "x"})

    return {
        ("GET", path): Rule(200, _path(f"GET {url}"), write=False),
        ("PATCH", path): Rule(200, describe),
        ("DELETE", path): Rule(204, _path(f"DELETE {url}")),
    }


async def _runs_create(case: Case, slot: Slot) -> Call:
    params = parameters_with(case.world, slot)
    return Call("POST", "/api/job-runs", json={"job_type": slot.job_type, "parameters": params})


async def _runs_filter(case: Case, slot: Slot) -> Call:
    return Call("GET", "/api/job-runs", params={str(slot.loc[0]): mine(case, slot)})


async def _cancel(case: Case, slot: Slot) -> Call:
    return Call("POST", f"/api/job-runs/{case.world.mine['pending_run']}/cancel")


async def _template_create(case: Case, slot: Slot) -> Call:
    body = {
        "name": unique("new"),
        "job_type": slot.job_type,
        "config": parameters_with(case.world, slot),
        "is_global": False,
    }
    return Call("POST", "/api/job-templates", json=body)


async def _template_patch(case: Case, slot: Slot) -> Call:
    if slot.place == "path":
        return Call("PATCH", f"/api/job-templates/{mine(case, slot)}", json={"description": "x"})
    assert slot.job_type is not None
    own = await add_template(
        case.services, case.username, slot.job_type, _base(case.world, slot), is_global=False
    )
    config = parameters_with(case.world, slot)
    return Call("PATCH", f"/api/job-templates/{own}", json={"config": config})


async def _global_template(case: Case, slot: Slot) -> int:
    assert slot.job_type is not None
    return await add_template(
        case.services, "root", slot.job_type, _base(case.world, slot), is_global=True
    )


async def _template_run(case: Case, slot: Slot) -> Call:
    if slot.place == "path":
        return Call("POST", f"/api/job-templates/{mine(case, slot)}/run", json={})
    template = await _global_template(case, slot)
    body = {"parameters": parameters_with(case.world, slot)}
    return Call("POST", f"/api/job-templates/{template}/run", json=body)


async def _schedule_create(case: Case, slot: Slot) -> Call:
    body: dict[str, Any] = {
        "job_identifier": unique("new"),
        "schedule_type": "interval",
        "interval_minutes": 60,
        "is_global": False,
        "is_active": False,
    }
    if slot.place == "parameters":
        body.update(
            template_id=await _global_template(case, slot),
            parameters=parameters_with(case.world, slot),
        )
    elif slot.kind == "job_template":
        body["template_id"] = mine(case, slot)
    else:
        echo = await add_template(case.services, "root", "diag.echo", {}, is_global=True)
        body.update(template_id=echo, credential_id=mine(case, slot))
    return Call("POST", "/api/job-schedules", json=body)


async def _schedule_put(case: Case, slot: Slot) -> Call:
    if slot.place == "path":
        return Call("PUT", f"/api/job-schedules/{mine(case, slot)}", json={"is_active": False})
    if slot.place == "parameters":
        template = await _global_template(case, slot)
        body: dict[str, Any] = {"parameters": parameters_with(case.world, slot)}
    else:
        template = await add_template(case.services, "root", "diag.echo", {}, is_global=True)
        body = {"credential_id": mine(case, slot)}
    own = await add_schedule(case.services, case.username, template)
    return Call("PUT", f"/api/job-schedules/{own}", json=body)


async def _schedule_run(case: Case, slot: Slot) -> Call:
    if slot.place == "path":
        return Call("POST", f"/api/job-schedules/{mine(case, slot)}/run", json={})
    shared = await add_schedule(case.services, "root", await _global_template(case, slot))
    body = {"parameters": parameters_with(case.world, slot)}
    return Call("POST", f"/api/job-schedules/{shared}/run", json=body)


async def _schedules_filter(case: Case, slot: Slot) -> Call:
    return Call("GET", "/api/job-schedules", params={"template_id": mine(case, slot)})


async def _repository_create(case: Case, slot: Slot) -> Call:
    body = {"name": unique("repo"), "credential_id": case.world.mine["token_credential"]}
    return Call("POST", "/api/git-repositories", json=body)


async def _repository_patch(case: Case, slot: Slot) -> Call:
    if slot.place == "path":
        url = {"url": "https://elsewhere.invalid/b.git"}
        return Call("PATCH", f"/api/git-repositories/{mine(case, slot)}", json=url)
    shared = case.world.shared["git_repository"]
    credential = {"credential_id": case.world.mine["token_credential"]}
    return Call("PATCH", f"/api/git-repositories/{shared}", json=credential)


def _instance_body(case: Case, slot: Slot) -> dict[str, Any]:
    """Alice's credential in the slot's field: the login, or a TLS store's password."""
    field = str(slot.loc[0])
    if field == "credential_id":
        return {
            "auth_mode": "username_password",
            "credential_id": case.world.mine["nifi_credential"],
        }
    store = field.removesuffix("_credential_id")
    body: dict[str, Any] = {
        field: case.world.mine["tls_credential"],
        f"{store}_path": f"/etc/{store}",
    }
    if store == "keystore":
        body["auth_mode"] = "client_certificate"
    return body


async def _instance_create(case: Case, slot: Slot) -> Call:
    body = {"name": unique("nifi"), "url": "http://127.0.0.1:9", **_instance_body(case, slot)}
    return Call("POST", "/api/nifi/instances", json=body)


async def _instance_patch(case: Case, slot: Slot) -> Call:
    if slot.place == "path":
        body = {"url": "http://127.0.0.1:10"}
        return Call("PATCH", f"/api/nifi/instances/{mine(case, slot)}", json=body)
    shared = case.world.shared["free_nifi_instance"]
    return Call("PATCH", f"/api/nifi/instances/{shared}", json=_instance_body(case, slot))


def _members(case: Case) -> list[dict[str, Any]]:
    return [{"instance_id": case.world.mine["free_nifi_instance"], "is_primary": True}]


async def _cluster_create(case: Case, slot: Slot) -> Call:
    body = {"name": unique("cluster"), "members": _members(case)}
    return Call("POST", "/api/nifi/clusters", json=body)


async def _cluster_patch(case: Case, slot: Slot) -> Call:
    if slot.place == "path":
        return Call("PATCH", f"/api/nifi/clusters/{mine(case, slot)}", json={"description": "x"})
    empty = case.world.shared["empty_nifi_cluster"]
    return Call("PATCH", f"/api/nifi/clusters/{empty}", json={"members": _members(case)})


async def _instances_filter(case: Case, slot: Slot) -> Call:
    return Call("GET", "/api/nifi/instances", params={"cluster_id": mine(case, slot)})


def _backups(suffix: str) -> Builder:
    async def build(case: Case, slot: Slot) -> Call:
        params: dict[str, Any] = {"repository_id": mine(case, slot)}
        if suffix:
            params.update({"from": case.world.commit, "to": case.world.commit})
        return Call("GET", f"/api/devices/{DEVICE_ID}/backups{suffix}", params=params)

    return build


async def _channel_create(case: Case, slot: Slot) -> Call:
    body = {
        "name": unique("channel"),
        "type": slot.job_type,
        "config": parameters_with(case.world, slot),
    }
    return Call("POST", "/api/notifications/channels", json=body)


async def _channel_patch(case: Case, slot: Slot) -> Call:
    if slot.place == "path":
        body = {"name": unique("channel")}
        return Call("PATCH", f"/api/notifications/channels/{mine(case, slot)}", json=body)
    own = await add_channel(case.services, case.username, "email", EMAIL)
    config = {"config": parameters_with(case.world, slot)}
    return Call("PATCH", f"/api/notifications/channels/{own}", json=config)


def _rule_body(channel: int) -> dict[str, Any]:
    return {"name": unique("rule"), "events": ["run.failed"], "channel_ids": [channel]}


async def _rule_create(case: Case, slot: Slot) -> Call:
    body = _rule_body(mine(case, slot))
    return Call("POST", "/api/notifications/rules", json=body)


async def _rule_patch(case: Case, slot: Slot) -> Call:
    if slot.place == "path":
        body = {"name": unique("rule")}
        return Call("PATCH", f"/api/notifications/rules/{mine(case, slot)}", json=body)
    own = await add_rule(case.services, case.username, case.world.shared["notification_channel"])
    body = {"channel_ids": [mine(case, slot)]}
    return Call("PATCH", f"/api/notifications/rules/{own}", json=body)


async def _deliveries_filter(case: Case, slot: Slot) -> Call:
    params = {str(slot.loc[0]): mine(case, slot)}
    return Call("GET", "/api/notifications/deliveries", params=params)


def _window_body(**fields: Any) -> dict[str, Any]:
    times = {"start_at": "2099-02-01T00:00:00Z", "end_at": "2099-02-02T00:00:00Z"}
    return {"name": unique("window"), **times, "is_global": False, **fields}


async def _window_create(case: Case, slot: Slot) -> Call:
    body = _window_body(inventory_id=mine(case, slot))
    return Call("POST", "/api/maintenance-windows", json=body)


async def _window_put(case: Case, slot: Slot) -> Call:
    if slot.place == "path":
        return Call("PUT", f"/api/maintenance-windows/{mine(case, slot)}", json=_window_body())
    own = await add_window(case.services, case.username)
    body = _window_body(inventory_id=mine(case, slot))
    return Call("PUT", f"/api/maintenance-windows/{own}", json=body)


def _items(response: Any) -> list[Any]:
    items: list[Any] = response["items"]
    return items


RULES: dict[tuple[str, str], Rule] = {
    # runs
    ("POST", "/api/job-runs"): Rule(202, _runs_create, params_loc=("parameters",)),
    ("GET", "/api/job-runs"): Rule(
        200,
        _runs_filter,
        write=False,
        shown=lambda r, w: w.mine["job_run"] in {i["id"] for i in _items(r)},
    ),
    ("GET", "/api/job-runs/{run_id}"): Rule(200, _path("GET /api/job-runs/{id}"), write=False),
    ("DELETE", "/api/job-runs/{run_id}"): Rule(204, _path("DELETE /api/job-runs/{id}")),
    ("GET", "/api/job-runs/{run_id}/targets"): Rule(
        200, _path("GET /api/job-runs/{id}/targets"), write=False
    ),
    ("GET", "/api/job-runs/{run_id}/attempts"): Rule(
        200, _path("GET /api/job-runs/{id}/attempts"), write=False
    ),
    ("GET", "/api/job-runs/{run_id}/progress"): Rule(
        200, _path("GET /api/job-runs/{id}/progress"), write=False
    ),
    ("GET", "/api/job-runs/{run_id}/events"): Rule(
        200, _path("GET /api/job-runs/{id}/events"), write=False
    ),
    ("POST", "/api/job-runs/{run_id}/cancel"): Rule(202, _cancel),
    ("POST", "/api/job-runs/{run_id}/retry"): Rule(202, _path("POST /api/job-runs/{id}/retry")),
    # templates
    ("POST", "/api/job-templates"): Rule(201, _template_create, params_loc=("config",)),
    ("GET", "/api/job-templates/{template_id}"): Rule(
        200, _path("GET /api/job-templates/{id}"), write=False
    ),
    ("PATCH", "/api/job-templates/{template_id}"): Rule(
        200, _template_patch, params_loc=("config",)
    ),
    ("DELETE", "/api/job-templates/{template_id}"): Rule(
        204, _path("DELETE /api/job-templates/{id}?cascade=true")
    ),
    ("POST", "/api/job-templates/{template_id}/run"): Rule(
        202, _template_run, params_loc=("parameters",)
    ),
    # schedules
    ("POST", "/api/job-schedules"): Rule(201, _schedule_create, params_loc=("body", "parameters")),
    ("GET", "/api/job-schedules"): Rule(
        200,
        _schedules_filter,
        write=False,
        shown=lambda r, w: w.mine["job_schedule"] in {i["id"] for i in _items(r)},
    ),
    ("GET", "/api/job-schedules/{schedule_id}"): Rule(
        200, _path("GET /api/job-schedules/{id}"), write=False
    ),
    ("PUT", "/api/job-schedules/{schedule_id}"): Rule(
        200, _schedule_put, params_loc=("body", "parameters")
    ),
    ("DELETE", "/api/job-schedules/{schedule_id}"): Rule(
        204, _path("DELETE /api/job-schedules/{id}")
    ),
    ("POST", "/api/job-schedules/{schedule_id}/run"): Rule(
        202, _schedule_run, params_loc=("parameters",)
    ),
    ("GET", "/api/job-schedules/{schedule_id}/preview"): Rule(
        200, _path("GET /api/job-schedules/{id}/preview"), write=False
    ),
    # credentials, inventories, command templates; tokens and queues
    **_read_change_delete("/api/credentials/{credential_id}"),
    **_read_change_delete("/api/inventories/{inventory_id}"),
    **_read_change_delete("/api/command-templates/{template_id}"),
    ("POST", "/api/tokens/{token_id}/revoke"): Rule(
        200, _path("POST /api/tokens/{id}/revoke"), admin_only=True
    ),
    ("POST", "/api/queues/{name}/purge"): Rule(
        200, _path("POST /api/queues/t-default/purge"), admin_only=True
    ),
    ("POST", "/api/inventories/{inventory_id}/preview"): Rule(
        200, _path("POST /api/inventories/{id}/preview"), write=False
    ),
    ("GET", "/api/command-templates/{template_id}/versions"): Rule(
        200, _path("GET /api/command-templates/{id}/versions"), write=False
    ),
    # git repositories and backups
    ("POST", "/api/git-repositories"): Rule(201, _repository_create),
    ("GET", "/api/git-repositories/{repository_id}"): Rule(
        200, _path("GET /api/git-repositories/{id}"), write=False, other_holder=200
    ),
    ("PATCH", "/api/git-repositories/{repository_id}"): Rule(
        200, _repository_patch, other_holder=403
    ),
    ("DELETE", "/api/git-repositories/{repository_id}"): Rule(
        204, _path("DELETE /api/git-repositories/{id}"), other_holder=204
    ),
    ("GET", "/api/devices/{device_id}/backups"): Rule(
        200,
        _backups(""),
        write=False,
        shown=lambda r, w: bool(r.get("files")),
        hidden_status=404,
        checkout=True,
    ),
    ("GET", "/api/devices/{device_id}/backups/diff"): Rule(
        200,
        _backups("/diff"),
        write=False,
        shown=lambda r, w: "diff" in r,
        hidden_status=404,
        checkout=True,
    ),
    # NiFi
    ("POST", "/api/nifi/instances"): Rule(201, _instance_create),
    ("GET", "/api/nifi/instances"): Rule(
        200,
        _instances_filter,
        write=False,
        shown=lambda r, w: w.mine["nifi_instance"] in {i["id"] for i in _items(r)},
        shown_to_all=True,
    ),
    ("GET", "/api/nifi/instances/{instance_id}"): Rule(
        200, _path("GET /api/nifi/instances/{id}"), write=False, other_holder=200
    ),
    ("PATCH", "/api/nifi/instances/{instance_id}"): Rule(200, _instance_patch, other_holder=403),
    ("DELETE", "/api/nifi/instances/{instance_id}"): Rule(
        204, _path("DELETE /api/nifi/instances/{id}"), other_holder=204
    ),
    ("POST", "/api/nifi/instances/{instance_id}/test"): Rule(
        200, _path("POST /api/nifi/instances/{id}/test"), other_holder=403
    ),
    ("POST", "/api/nifi/clusters"): Rule(201, _cluster_create),
    ("GET", "/api/nifi/clusters/{cluster_id}"): Rule(
        200, _path("GET /api/nifi/clusters/{id}"), write=False, other_holder=200
    ),
    ("PATCH", "/api/nifi/clusters/{cluster_id}"): Rule(200, _cluster_patch, other_holder=200),
    ("DELETE", "/api/nifi/clusters/{cluster_id}"): Rule(
        204, _path("DELETE /api/nifi/clusters/{id}"), other_holder=204
    ),
    # notifications and maintenance windows
    ("POST", "/api/notifications/channels"): Rule(
        201, _channel_create, params_loc=("body", "config")
    ),
    ("GET", "/api/notifications/channels/{channel_id}"): Rule(
        200, _path("GET /api/notifications/channels/{id}"), write=False
    ),
    ("PATCH", "/api/notifications/channels/{channel_id}"): Rule(
        200, _channel_patch, params_loc=("body", "config")
    ),
    ("DELETE", "/api/notifications/channels/{channel_id}"): Rule(
        204, _path("DELETE /api/notifications/channels/{id}")
    ),
    ("POST", "/api/notifications/channels/{channel_id}/test"): Rule(
        200, _path("POST /api/notifications/channels/{id}/test")
    ),
    ("POST", "/api/notifications/rules"): Rule(201, _rule_create),
    ("GET", "/api/notifications/rules/{rule_id}"): Rule(
        200, _path("GET /api/notifications/rules/{id}"), write=False
    ),
    ("PATCH", "/api/notifications/rules/{rule_id}"): Rule(200, _rule_patch),
    ("DELETE", "/api/notifications/rules/{rule_id}"): Rule(
        204, _path("DELETE /api/notifications/rules/{id}")
    ),
    ("GET", "/api/notifications/deliveries"): Rule(
        200,
        _deliveries_filter,
        write=False,
        shown=lambda r, w: w.mine["notification_delivery"] in {i["id"] for i in _items(r)},
    ),
    ("GET", "/api/notifications/deliveries/{delivery_id}"): Rule(
        200, _path("GET /api/notifications/deliveries/{id}"), write=False
    ),
    ("POST", "/api/maintenance-windows"): Rule(201, _window_create),
    ("GET", "/api/maintenance-windows/{window_id}"): Rule(
        200, _path("GET /api/maintenance-windows/{id}"), write=False
    ),
    ("PUT", "/api/maintenance-windows/{window_id}"): Rule(200, _window_put),
    ("DELETE", "/api/maintenance-windows/{window_id}"): Rule(
        204, _path("DELETE /api/maintenance-windows/{id}")
    ),
}
