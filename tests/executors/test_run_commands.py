"""run_commands end to end: API-shaped runs, the real worker, Nautobot and SSH labs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from executors import get_executor
from executors.services import Services
from service.db.models import Outcome, RunStatus, TargetStatus, TriggeredBy
from service.errors import InvalidInput
from service.runs.requests import adhoc_request
from tests.api.test_credentials import all_redis_bytes
from tests.conftest import make_settings
from tests.device_lab import (
    LAB_PASSWORD,
    DeviceLab,
    add_command_template,
    add_credential,
    add_inventory,
    condition,
    eight_device_lab,
    run_device_job,
    target_rows,
    tree_of,
)


@pytest.fixture
async def device_lab(services: Services, tmp_path: Path) -> AsyncIterator[DeviceLab]:
    async with eight_device_lab(tmp_path) as lab:
        yield lab


SHOW = "show version\nshow interfaces description | include {{ nautobot.role.name }}\n"


async def test_commands_run_on_every_device_the_inventory_selects(
    services: Services, device_lab: DeviceLab
) -> None:
    credential = await add_credential(services)
    inventory = await add_inventory(services, tree_of(condition("location", "equals", "fra1")))
    template = await add_command_template(services, SHOW)
    run = await run_device_job(
        services,
        device_lab,
        "run_commands",
        {"targets": {"inventory_id": inventory}, "command_template_id": template},
        credential_id=credential,
    )
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.outcome == Outcome.OK
    # fra1 includes its room (descendant location): all four fra1 devices.
    names = ["fra1-edge-0003", "fra1-leaf-0001", "fra1-router-0000", "fra1-spine-0002"]
    assert sorted(t["name"] for t in run.targets or []) == names
    rows = await target_rows(services, run.id)
    assert list(rows) == names
    leaf = rows["fra1-leaf-0001"]
    assert leaf.status == TargetStatus.SUCCEEDED
    assert leaf.result is not None
    assert leaf.result["rendered_commands"] == [
        "show version",
        "show interfaces description | include leaf",
    ]
    assert "fra1-leaf-0001" in leaf.result["outputs"][0]["output"]
    assert leaf.result["platform"] == "cisco_nxos"
    assert run.result is not None
    assert run.result["command_template"]["version"] == 1
    assert run.result["targets_from_cache"] is False
    assert device_lab.fleet.device("ams1-leaf-0005").logins == 0


async def test_some_devices_failing_completes_with_a_warning_and_keeps_every_output(
    services: Services, device_lab: DeviceLab
) -> None:
    credential = await add_credential(services)
    template = await add_command_template(services, "show version\n")
    device_lab.fleet.device("fra1-edge-0003").refuse_logins = True
    device_lab.fleet.device("ams1-leaf-0005").disconnect_on = "show version"
    run = await run_device_job(
        services,
        device_lab,
        "run_commands",
        {"targets": {"all": True}, "command_template_id": template},
        credential_id=credential,
    )
    assert run.status == RunStatus.COMPLETED
    assert run.outcome == Outcome.WARNING
    assert run.summary == "commands ran on 6 of 8 device(s)"
    rows = await target_rows(services, run.id)
    assert len(rows) == 8
    refused = rows["fra1-edge-0003"]
    assert refused.status == TargetStatus.FAILED
    assert refused.result is not None
    assert refused.result["error_code"] == "auth_failed"
    assert "refused the login" in (refused.error or "")
    dropped = rows["ams1-leaf-0005"]
    assert dropped.status == TargetStatus.FAILED
    assert dropped.result is not None
    assert dropped.result["error_code"] == "disconnected"
    for name, row in rows.items():
        if name not in ("fra1-edge-0003", "ams1-leaf-0005"):
            assert row.status == TargetStatus.SUCCEEDED
            assert row.result is not None
            assert name in row.result["outputs"][0]["output"]


async def test_all_devices_failing_fails_the_run_and_keeps_every_row(
    services: Services, device_lab: DeviceLab
) -> None:
    credential = await add_credential(services, password="wrong-password")
    template = await add_command_template(services, "show version\n")
    run = await run_device_job(
        services,
        device_lab,
        "run_commands",
        {"targets": {"all": True}, "command_template_id": template},
        credential_id=credential,
    )
    assert run.status == RunStatus.FAILED
    assert run.error is not None
    assert run.error.startswith("all 8 device(s) failed")
    assert run.result is not None
    assert run.result["failed"] == 8
    rows = await target_rows(services, run.id)
    assert len(rows) == 8
    assert {row.status for row in rows.values()} == {TargetStatus.FAILED}
    assert all(row.result and row.result["error_code"] == "auth_failed" for row in rows.values())


async def test_the_sandbox_fails_the_device_whose_template_escapes(
    services: Services, device_lab: DeviceLab
) -> None:
    credential = await add_credential(services)
    escape = (
        "show version\n"
        "{% if nautobot.name == 'fra1-leaf-0001' %}"
        "{{ ''.__class__.__mro__[1].__subclasses__() }}"
        "{% endif %}\n"
    )
    template = await add_command_template(services, escape)
    run = await run_device_job(
        services,
        device_lab,
        "run_commands",
        {"targets": {"device_ids": [d.id for d in device_lab.inventory.devices[:3]]}}
        | {"command_template_id": template},
        credential_id=credential,
    )
    assert run.status == RunStatus.COMPLETED
    assert run.outcome == Outcome.WARNING
    rows = await target_rows(services, run.id)
    escaped = rows["fra1-leaf-0001"]
    assert escaped.status == TargetStatus.FAILED
    assert escaped.error is not None
    assert escaped.error.startswith("template refused by the sandbox")
    assert "__class__" in escaped.error
    # Nothing was sent to the device whose template was refused.
    assert device_lab.fleet.device("fra1-leaf-0001").commands == []
    assert rows["fra1-router-0000"].status == TargetStatus.SUCCEEDED


async def test_an_unresolvable_inventory_fails_the_run_without_touching_devices(
    services: Services, device_lab: DeviceLab
) -> None:
    credential = await add_credential(services)
    template = await add_command_template(services, "show version\n")
    inventory = await add_inventory(
        services, tree_of(condition("role", "equals", "no-such-role")), name="broken"
    )
    run = await run_device_job(
        services,
        device_lab,
        "run_commands",
        {"targets": {"inventory_id": inventory}, "command_template_id": template},
        credential_id=credential,
    )
    assert run.status == RunStatus.FAILED
    assert run.error is not None
    assert run.error.startswith("inventory could not be resolved (condition role equals")
    assert "no-such-role" in run.error
    assert await target_rows(services, run.id) == {}
    assert all(device.logins == 0 for device in device_lab.fleet.devices.values())

    device_lab.nautobot.fail_next = 100
    run = await run_device_job(
        services,
        device_lab,
        "run_commands",
        {"targets": {"all": True}, "command_template_id": template},
        credential_id=credential,
    )
    assert run.status == RunStatus.FAILED
    assert run.error == "all devices could not be listed: Nautobot answered HTTP 500"


async def test_unknown_device_ids_and_missing_inventories_fail_the_run(
    services: Services, device_lab: DeviceLab
) -> None:
    credential = await add_credential(services)
    template = await add_command_template(services, "show version\n")
    known = device_lab.inventory.devices[0].id
    for targets, error in [
        ({"device_ids": [known, "no-such-id"]}, "devices not found in Nautobot: no-such-id"),
        ({"inventory_id": 999}, "inventory 999 does not exist"),
    ]:
        run = await run_device_job(
            services,
            device_lab,
            "run_commands",
            {"targets": targets, "command_template_id": template},
            credential_id=credential,
        )
        assert run.status == RunStatus.FAILED
        assert error in (run.error or "")


@pytest.mark.parametrize(
    "targets",
    [{}, {"all": False}, {"all": True, "inventory_id": 1}, {"device_ids": []}],
)
def test_the_target_spec_names_exactly_one_choice(targets: dict[str, object]) -> None:
    with pytest.raises(InvalidInput) as raised:
        adhoc_request(
            make_settings(),
            get_executor,
            job_type="run_commands",
            parameters={"targets": targets, "command_template_id": 1},
            triggered_by=TriggeredBy.API,
            executed_by="admin",
        )
    assert raised.value.details[0]["loc"][:2] == ["parameters", "targets"]


async def test_credential_secrets_never_leave_the_worker(
    services: Services, device_lab: DeviceLab, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    credential = await add_credential(services)
    template = await add_command_template(services, "show version\n")
    device_lab.fleet.device("fra1-edge-0003").refuse_logins = True
    run = await run_device_job(
        services,
        device_lab,
        "run_commands",
        {"targets": {"all": True}, "command_template_id": template},
        credential_id=credential,
    )
    assert run.status == RunStatus.COMPLETED
    secret = LAB_PASSWORD.encode()
    assert secret not in await all_redis_bytes(services)
    rows = await target_rows(services, run.id)
    assert LAB_PASSWORD not in repr([(r.result, r.error) for r in rows.values()])
    assert LAB_PASSWORD not in repr((run.parameters, run.result, run.error, run.summary))
    assert LAB_PASSWORD not in caplog.text


async def test_a_private_credential_serves_only_its_owner(
    services: Services, device_lab: DeviceLab
) -> None:
    private = await add_credential(services, owner="olga", is_global=False)
    template = await add_command_template(services, "show version\n")
    device = device_lab.inventory.devices[1]
    parameters = {
        "targets": {"device_ids": [device.id]},
        "command_template_id": template,
        "credential_id": private,
    }
    borrowed = await run_device_job(
        services, device_lab, "run_commands", parameters, executed_by="mallory"
    )
    assert borrowed.status == RunStatus.FAILED
    assert borrowed.error == (
        "refused before using anything: runs as mallory; "
        f"credential {private} does not exist (parameters.credential_id)"
    )
    assert device_lab.fleet.device(device.name).logins == 0
    assert await target_rows(services, borrowed.id) == {}
    owned = await run_device_job(
        services, device_lab, "run_commands", parameters, executed_by="olga"
    )
    assert owned.status == RunStatus.COMPLETED, owned.error


async def test_a_device_output_is_kept_up_to_its_budget(
    services: Services, device_lab: DeviceLab
) -> None:
    credential = await add_credential(services)
    template = await add_command_template(services, "show logging\nshow version\n")
    leaf = device_lab.fleet.device("fra1-leaf-0001")
    leaf.outputs["show logging"] = "%LINK-3-UPDOWN: Interface Ethernet1/1, changed state\n" * 25_000
    run = await run_device_job(
        services,
        device_lab,
        "run_commands",
        {
            "targets": {"device_ids": [device_lab.inventory.device(leaf.name).id]},
            "command_template_id": template,
        },
        credential_id=credential,
    )
    assert run.status == RunStatus.COMPLETED, run.error
    row = (await target_rows(services, run.id))[leaf.name]
    assert row.result is not None
    logging_output, version_output = (o["output"] for o in row.result["outputs"])
    assert len(logging_output) < 1_000_100
    assert logging_output.endswith("more character(s)")
    assert logging_output.startswith("%LINK-3-UPDOWN")
    assert version_output.startswith("\n... ")
