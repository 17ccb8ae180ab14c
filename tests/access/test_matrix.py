"""The authorisation matrix, generated from the OpenAPI schema and the job types' Configs.

Every operation taking a resource id — in its path, as a query filter, in its body (the
``x-resource`` fields), or in ``parameters``/``config`` (the marked fields of every job
type's Config) — is called by each role (admin, owner, other operator, viewer,
anonymous) with operator alice's private resource in that slot, and answers as
``tests/access/matrix_rules.py`` says. A new route, path parameter, id field or Config
field without a rule fails ``test_every_resource_id_has_a_rule`` by construction.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from executors import job_types
from executors.services import Services
from lab.nautobot import NautobotLab
from lab.nautobot_inventory import generate_inventory
from service.access.resources import ALL_WHEN_NULL_KEY, SCHEMA_KEY
from service.api.app import create_app
from service.notify.channels import CONFIG_MODELS
from service.settings import GitSettings, NautobotSettings
from tests.access.matrix_rules import RULES, Case, Rule, Slot, error_loc, expected
from tests.access.world import ROLES, actors, build_world
from tests.conftest import make_settings
from tests.device_lab import serve_api

#: The resource (or outside object) each path parameter names, by the path up to it.
PATH_KINDS = {
    "/api/job-runs/{run_id}": "job_run",
    "/api/job-templates/{template_id}": "job_template",
    "/api/job-schedules/{schedule_id}": "job_schedule",
    "/api/credentials/{credential_id}": "credential",
    "/api/tokens/{token_id}": "api_token",
    "/api/queues/{name}": "queue",
    "/api/inventories/{inventory_id}": "inventory",
    "/api/command-templates/{template_id}": "command_template",
    "/api/git-repositories/{repository_id}": "git_repository",
    "/api/nifi/instances/{instance_id}": "nifi_instance",
    "/api/nifi/clusters/{cluster_id}": "nifi_cluster",
    "/api/notifications/channels/{channel_id}": "notification_channel",
    "/api/notifications/rules/{rule_id}": "notification_rule",
    "/api/notifications/deliveries/{delivery_id}": "notification_delivery",
    "/api/maintenance-windows/{window_id}": "maintenance_window",
    # Nautobot's device ids: not ours to own.
    "/api/devices/{device_id}": None,
}
#: Query parameters that filter by a resource id.
FILTERS = {
    ("/api/job-runs", "template_id"): "job_template",
    ("/api/job-runs", "schedule_id"): "job_schedule",
    ("/api/job-schedules", "template_id"): "job_template",
    ("/api/nifi/instances", "cluster_id"): "nifi_cluster",
    ("/api/devices/{device_id}/backups", "repository_id"): "git_repository",
    ("/api/devices/{device_id}/backups/diff", "repository_id"): "git_repository",
    ("/api/notifications/deliveries", "rule_id"): "notification_rule",
    ("/api/notifications/deliveries", "channel_id"): "notification_channel",
    ("/api/notifications/deliveries", "run_id"): "job_run",
}
#: Body fields that only narrow what a rule or window applies to: naming a resource one
#: may not see there uses nothing and answers nothing about it.
SCOPES = {
    ("/api/notifications/rules", "template_ids"),
    ("/api/notifications/rules", "schedule_ids"),
    ("/api/maintenance-windows", "template_ids"),
    ("/api/maintenance-windows", "schedule_ids"),
}
#: Id-like fields that name something outside opsjobs.
NOT_OURS = frozenset({"process_group_id", "device_ids", "group_ids"})
#: Body fields holding a typed configuration, per family of routes: job types' Configs
#: (``parameters``/``config``) and notification channels' configs (``config``).
CONFIG_FIELDS = frozenset({"parameters", "config"})


def _config_models(path: str) -> list[tuple[str, type[BaseModel]]]:
    if path.startswith("/api/job-"):
        return [(executor.job_type, executor.config) for executor in job_types()]
    if path.startswith("/api/notifications/channels"):
        return [(kind.value, model) for kind, model in CONFIG_MODELS.items()]
    return []


_ID_LIKE = re.compile(r"(^|_)ids?$")


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def schema_fields(
    schema: dict[str, Any], root: dict[str, Any], loc: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """Every property of an object schema (nested objects and arrays included)."""
    schema = _resolve(schema, root)
    for option in schema.get("anyOf", []):
        yield from schema_fields(option, root, loc)
    if schema.get("type") == "array" and "items" in schema:
        yield from schema_fields(schema["items"], root, (*loc, 0))
    for name, prop in schema.get("properties", {}).items():
        yield (*loc, name), prop
        if SCHEMA_KEY not in prop:
            yield from schema_fields(prop, root, (*loc, name))


def _listed(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "array" or any(
        o.get("type") == "array" for o in prop.get("anyOf", [])
    )


def marked_slots(
    schema: dict[str, Any], root: dict[str, Any], place: str, job_type: str | None = None
) -> tuple[list[Slot], list[str], bool]:
    """The marked resource fields of a schema, the unmarked id-like ones, and whether it
    holds a job type's parameters."""
    slots: list[Slot] = []
    unmarked: list[str] = []
    has_config = False
    for loc, prop in schema_fields(schema, root):
        name = str(loc[-1])
        if SCHEMA_KEY in prop:
            loc_without_items = tuple(part for part in loc if part != 0)
            slot = Slot(
                place,
                prop[SCHEMA_KEY],
                loc if place == "body" else loc_without_items,
                job_type,
                _listed(prop),
            )
            slots.append(slot)
            if prop.get(ALL_WHEN_NULL_KEY):
                slots.append(Slot(place, slot.kind, slot.loc, job_type, slot.listed, every=True))
        elif place == "body" and name in CONFIG_FIELDS and len(loc) == 1:
            has_config = True
        elif _ID_LIKE.search(name) and name not in NOT_OURS:
            unmarked.append(".".join(str(part) for part in loc))
    return slots, unmarked, has_config


def config_slots(path: str) -> tuple[list[Slot], list[str]]:
    """The marked fields of the configs a route takes; unmarked id-like fields."""
    slots: list[Slot] = []
    unmarked: list[str] = []
    for variant, model in _config_models(path):
        schema = model.model_json_schema()
        found, loose, _ = marked_slots(schema, schema, "parameters", variant)
        slots += found
        unmarked += [f"{path} {variant}: {name}" for name in loose]
    return slots, unmarked


def operation_slots(spec: dict[str, Any]) -> tuple[dict[tuple[str, str], list[Slot]], list[str]]:
    """Each operation's resource slots, and every id-like input no rule covers."""
    problems: list[str] = []
    operations: dict[tuple[str, str], list[Slot]] = {}
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            key = (method.upper(), path)
            slots: list[Slot] = []
            for parameter in operation.get("parameters", []):
                name, where = parameter["name"], parameter["in"]
                if where == "path":
                    prefix = path[: path.index(f"{{{name}}}") + len(name) + 2]
                    if prefix not in PATH_KINDS:
                        problems.append(f"{method.upper()} {path}: path parameter {name}")
                    elif PATH_KINDS[prefix] is not None:
                        slots.append(Slot("path", str(PATH_KINDS[prefix]), (name,)))
                elif where == "query" and _ID_LIKE.search(name):
                    if (path, name) not in FILTERS:
                        problems.append(f"{method.upper()} {path}: query parameter {name}")
                    else:
                        slots.append(Slot("query", FILTERS[(path, name)], (name,)))
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                found, loose, has_config = marked_slots(body["schema"], spec, "body")
                slots += found
                scoped = {name for prefix, name in SCOPES if path.startswith(prefix)}
                problems += [
                    f"{method.upper()} {path}: body field {name}"
                    for name in loose
                    if name not in scoped
                ]
                if has_config:
                    inner, loose_inner = config_slots(path)
                    if not _config_models(path):
                        problems.append(f"{method.upper()} {path}: untyped config")
                    slots += inner
                    problems += sorted(set(loose_inner) - set(problems))
            if slots:
                operations[key] = slots
    return operations, problems


@pytest.fixture(scope="module")
def operations() -> dict[tuple[str, str], list[Slot]]:
    found, _ = operation_slots(create_app(make_settings()).openapi())
    return found


def test_every_resource_id_has_a_rule(operations: dict[tuple[str, str], list[Slot]]) -> None:
    _, problems = operation_slots(create_app(make_settings()).openapi())
    assert problems == [], "inputs naming an id without a rule (mark them or classify them)"
    assert sorted(operations) == sorted(RULES), "operations with resource ids need a rule"
    for (method, path), slots in operations.items():
        for slot in slots:
            if slot.place == "path" and slot.kind in {
                "git_repository",
                "nifi_instance",
                "nifi_cluster",
            }:
                assert RULES[(method, path)].other_holder is not None, (method, path)
            if slot.place == "query":
                assert RULES[(method, path)].shown is not None, (method, path)
    cases = sum(len(slots) for slots in operations.values()) * len(ROLES)
    # The matrix's size, stated: every slot of every operation, for each of the roles.
    assert cases == 850


@pytest.fixture(scope="module")
async def matrix_api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, Path]]:
    """The API with a Nautobot lab (inventory previews) and its own checkout root."""
    root = tmp_path_factory.mktemp("matrix")
    async with NautobotLab(generate_inventory(4), token="matrix-token") as nautobot:
        settings = make_settings(
            nautobot=NautobotSettings(url=nautobot.url, token="matrix-token", timeout=5),
            git=GitSettings(checkout_root=root / "git"),
        )
        async with serve_api(settings) as url:
            yield url, root / "git"


@pytest.mark.parametrize("operation", sorted(RULES), ids=lambda op: f"{op[0]} {op[1]}")
async def test_the_matrix(
    operation: tuple[str, str],
    operations: dict[tuple[str, str], list[Slot]],
    services: Services,
    matrix_api: tuple[str, Path],
) -> None:
    url, checkout_root = matrix_api
    rule = RULES[operation]
    wrong: list[str] = []
    async with actors(services, url) as team:
        for slot in operations[operation]:
            for role in ROLES:
                world = await build_world(services, checkout_root if rule.checkout else None)
                case = Case(services, world, role, team.usernames.get(role, "anonymous"))
                call = await rule.build(case, slot)
                response = await team.clients[role].request(
                    call.method, call.url, params=call.params, json=call.json
                )
                problem = _judge(rule, slot, role, response.status_code, response, world)
                if problem:
                    wrong.append(f"{slot.label()} as {role}: {problem}")
    assert wrong == []


def _judge(rule: Rule, slot: Slot, role: str, status: int, response: Any, world: Any) -> str | None:
    want = expected(rule, slot, role)
    if status != want:
        return f"{status} (expected {want}): {response.text[:300]}"
    if status >= 400:
        error = response.json().get("error", {})
        if set(error) != {"code", "message", "details"}:
            return f"not the error shape: {response.text[:300]}"
        if status in (403, 422) and slot.place in ("body", "parameters") and role == "other":
            locs = [item.get("loc") for item in error["details"] or []]
            if error_loc(rule, slot) not in locs:
                return f"refusal does not name {error_loc(rule, slot)}: {locs}"
        return None
    if rule.shown is not None and response.status_code == 200:
        visible = role in ("admin", "owner") or rule.shown_to_all
        if rule.shown(response.json(), world) != visible:
            return f"alice's row {'missing' if visible else 'shown'}: {response.text[:300]}"
    return None
