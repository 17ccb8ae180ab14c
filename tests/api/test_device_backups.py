"""/api/devices/{id}/backups: a device's configuration versions from git, and their diff."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from executors.services import Services
from service.db.models import RunStatus
from tests.device_lab import (
    DeviceLab,
    add_credential,
    add_repository,
    eight_device_lab,
    lab_api,
    run_device_job,
)


@pytest.fixture
async def device_lab(services: Services, tmp_path: Path) -> AsyncIterator[DeviceLab]:
    async with eight_device_lab(tmp_path) as lab:
        yield lab


async def test_versions_and_diff_of_a_device(services: Services, device_lab: DeviceLab) -> None:
    credential = await add_credential(services)
    repository = await add_repository(services, name="configs")
    leaf = device_lab.inventory.device("fra1-leaf-0001")
    parameters = {"targets": {"device_ids": [leaf.id]}, "repository_id": repository}
    first = await run_device_job(
        services, device_lab, "backup", parameters, credential_id=credential
    )
    simulated = device_lab.fleet.device(leaf.name)
    simulated.running_config = simulated.running_config.replace("uplink 3", "core link 3")
    second = await run_device_job(
        services, device_lab, "backup", parameters, credential_id=credential
    )
    assert (first.status, second.status) == (RunStatus.COMPLETED, RunStatus.COMPLETED)

    async with lab_api(services, device_lab) as http:
        listed = await http.get(f"/api/devices/{leaf.id}/backups")
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert body["device_name"] == "fra1-leaf-0001"
        files = {f["kind"]: f for f in body["files"]}
        running = files["running"]
        assert running["path"] == "fra1/fra1-leaf-0001.running-config"
        assert running["repository_name"] == "configs"
        assert [v["message"] for v in running["versions"]] == [
            f"Backup of 1 device(s) by opsjobs run {second.id}",
            f"Backup of 1 device(s) by opsjobs run {first.id}",
        ]
        assert len(files["startup"]["versions"]) == 1
        new, old = (v["commit"] for v in running["versions"])

        diff = await http.get(
            f"/api/devices/{leaf.id}/backups/diff", params={"from": old, "to": new}
        )
        assert diff.status_code == 200, diff.text
        text = diff.json()["diff"]
        assert "-" in text
        assert "+" in text
        assert "core link 3" in text

        startup = await http.get(
            f"/api/devices/{leaf.id}/backups",
            params={"kind": "startup", "repository_id": repository},
        )
        assert [f["kind"] for f in startup.json()["files"]] == ["startup"]
        assert (await http.get("/api/devices/unknown/backups")).status_code == 404
        bad = await http.get(
            f"/api/devices/{leaf.id}/backups/diff", params={"from": "HEAD~1", "to": new}
        )
        assert bad.status_code == 404
