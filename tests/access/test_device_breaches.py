"""Device jobs end to end against the lab: operator bob never logs in with operator
alice's secret nor runs her inventories and command templates — refused when he asks,
and refused again by the worker, before any login, when a schedule outlived his right."""

from __future__ import annotations

import httpx
from sqlalchemy import select, update

from executors.services import Services
from service.db.models import JobRun, RunStatus
from service.db.security_models import Credential
from tests.access.conftest import Team, created, device_credential, fire_schedule, refusal
from tests.device_lab import DeviceLab, condition, run_device_job, tree_of
from tests.workers import drain


def logins(lab: DeviceLab) -> int:
    return sum(device.logins for device in lab.fleet.devices.values())


async def _runs(services: Services) -> list[JobRun]:
    async with services.sessions() as session:
        return list(await session.scalars(select(JobRun).order_by(JobRun.id)))


async def _show_version(team: Team) -> int:
    """A global command template."""
    return await created(
        team.admin,
        "/api/command-templates",
        {"name": "show version", "content": "show version\n", "is_global": True},
    )


async def _show_template(
    team: Team, lab: DeviceLab, by: httpx.AsyncClient, *, is_global: bool
) -> int:
    """A run_commands template running ``show version`` on one device."""
    config = {
        "targets": {"device_ids": [lab.inventory.devices[0].id]},
        "command_template_id": await _show_version(team),
    }
    body = {"name": "show", "job_type": "run_commands", "config": config, "is_global": is_global}
    return await created(by, "/api/job-templates", body)


async def test_bob_cannot_schedule_with_alices_credential(
    services: Services, device_lab: DeviceLab, team: Team
) -> None:
    private = await device_credential(team.alice, "alice-ssh", is_global=False)
    template = await _show_template(team, device_lab, team.admin, is_global=True)
    now = {"schedule_type": "now", "template_id": template}

    as_field = await team.bob.post(
        "/api/job-schedules", json={**now, "job_identifier": "b1", "credential_id": private}
    )
    assert refusal(as_field) == (422, [["body", "credential_id"]])
    parameters = {"credential_id": private}
    as_parameter = await team.bob.post(
        "/api/job-schedules", json={**now, "job_identifier": "b2", "parameters": parameters}
    )
    assert refusal(as_parameter) == (422, [["body", "parameters", "credential_id"]])
    own = await created(
        team.bob,
        "/api/job-schedules",
        {
            "job_identifier": "b3",
            "template_id": template,
            "schedule_type": "interval",
            "interval_minutes": 60,
            "is_active": False,
        },
    )
    changed = await team.bob.put(f"/api/job-schedules/{own}", json={"credential_id": private})
    assert refusal(changed) == (422, [["body", "credential_id"]])
    await drain(device_lab.settings, device_lab.devices_queue)
    assert (await _runs(services), logins(device_lab)) == ([], 0)

    # Alice may: her "now" schedule logs in once, and its run is private to her.
    mine = await team.alice.post(
        "/api/job-schedules",
        json={**now, "job_identifier": "a1", "credential_id": private, "is_global": False},
    )
    assert mine.status_code == 201, mine.text
    await drain(device_lab.settings, device_lab.devices_queue)
    (run,) = await _runs(services)
    assert (run.status, run.private_to, logins(device_lab)) == (RunStatus.COMPLETED, "alice", 1)
    assert (await team.bob.get(f"/api/job-runs/{run.id}")).status_code == 404


async def test_a_credential_made_private_after_the_schedule_was_saved_fails_the_run_first(
    services: Services, device_lab: DeviceLab, team: Team
) -> None:
    shared = await device_credential(team.admin, "shared-ssh", is_global=True)
    template = await _show_template(team, device_lab, team.bob, is_global=False)
    schedule = await created(
        team.bob,
        "/api/job-schedules",
        {
            "job_identifier": "bob every hour",
            "template_id": template,
            "is_global": False,
            "schedule_type": "interval",
            "interval_minutes": 60,
            "credential_id": shared,
        },
    )
    # The credential changes hands after bob saved his schedule.
    async with services.sessions.begin() as session:
        await session.execute(
            update(Credential).where(Credential.id == shared).values(is_global=False, owner="alice")
        )
    await fire_schedule(services, device_lab.settings, schedule)
    await drain(device_lab.settings, device_lab.devices_queue)

    (run,) = await _runs(services)
    assert run.status == RunStatus.FAILED
    assert run.error == (
        "refused before using anything: runs as bob; "
        f"credential {shared} does not exist (credential_id)"
    )
    assert (logins(device_lab), run.targets) == (0, None)
    # Bob sees his own failed run; alice does not see bob's.
    assert (await team.bob.get(f"/api/job-runs/{run.id}")).status_code == 200
    assert (await team.alice.get(f"/api/job-runs/{run.id}")).status_code == 404


async def test_bob_cannot_run_alices_inventory_or_command_template(
    services: Services, device_lab: DeviceLab, team: Team
) -> None:
    shared = await device_credential(team.admin, "shared-ssh", is_global=True)
    show = await _show_version(team)
    inventory = await created(
        team.alice,
        "/api/inventories",
        {
            "name": "alice's leaves",
            "tree": tree_of(condition("name", "contains", "leaf")),
            "is_global": False,
        },
    )
    secret = await created(
        team.alice,
        "/api/command-templates",
        {"name": "alice's show", "content": "show running-config\n", "is_global": False},
    )
    attempts = [
        (
            {"targets": {"inventory_id": inventory}, "command_template_id": show},
            ["targets", "inventory_id"],
        ),
        ({"targets": {"all": True}, "command_template_id": secret}, ["command_template_id"]),
    ]
    queries = device_lab.nautobot.requests
    for parameters, loc in attempts:
        parameters = {**parameters, "credential_id": shared}
        run = await team.bob.post(
            "/api/job-runs", json={"job_type": "run_commands", "parameters": parameters}
        )
        assert refusal(run) == (422, [["parameters", *loc]])
        template = await team.bob.post(
            "/api/job-templates",
            json={"name": "t", "job_type": "run_commands", "config": parameters},
        )
        assert refusal(template) == (422, [["config", *loc]])
    # A run that reaches a worker another way is refused before it resolves anything.
    sneaked = await run_device_job(
        services,
        device_lab,
        "run_commands",
        {
            "targets": {"inventory_id": inventory},
            "command_template_id": secret,
            "credential_id": shared,
        },
        executed_by="bob",
    )
    assert sneaked.status == RunStatus.FAILED
    assert sneaked.error is not None
    assert (
        f"inventory {inventory} does not exist (parameters.targets.inventory_id)" in sneaked.error
    )
    assert f"command template {secret} does not exist" in sneaked.error
    assert (device_lab.nautobot.requests, logins(device_lab)) == (queries, 0)

    # Alice runs both.
    parameters = {
        "targets": {"inventory_id": inventory},
        "command_template_id": secret,
        "credential_id": shared,
    }
    response = await team.alice.post(
        "/api/job-runs", json={"job_type": "run_commands", "parameters": parameters}
    )
    assert response.status_code == 202, response.text
    await drain(device_lab.settings, device_lab.devices_queue)
    run = (await team.alice.get(f"/api/job-runs/{response.json()['id']}")).json()
    assert (run["status"], run["private_to"]) == ("completed", "alice")
    assert logins(device_lab) == run["target_counts"]["succeeded"] > 0
