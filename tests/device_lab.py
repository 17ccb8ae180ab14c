"""The device lab for end-to-end tests: Nautobot and SSH devices on loopback, settings
pointing a worker (and an API) at them, and helpers to store what device jobs need.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import select

from executors.services import Services
from lab.devices import DeviceFleet, attach_ssh_ports, fleet_for
from lab.nautobot import NautobotLab
from lab.nautobot_inventory import LabInventory, generate_inventory
from service.access.credentials import seal
from service.api.app import create_app
from service.db.device_models import CommandTemplate, CommandTemplateVersion, GitRepository
from service.db.device_models import Inventory as InventoryRow
from service.db.models import JobRun, JobRunTarget
from service.db.security_models import Credential, CredentialType, Role
from service.inventory.conditions import parse_inventory_tree
from service.settings import GitSettings, NautobotSettings, Settings, SshSettings
from tests.conftest import free_port, make_settings, token_for
from tests.workers import drain, enqueue_adhoc

LAB_USER = "netops"
#: A password distinctive enough to search for in Redis, rows and logs.
LAB_PASSWORD = "lab-secret-3c9e1f77"
NAUTOBOT_TOKEN = "nautobot-lab-token"


@dataclass
class DeviceLab:
    inventory: LabInventory
    nautobot: NautobotLab
    fleet: DeviceFleet
    settings: Settings
    root: Path

    @property
    def devices_queue(self) -> str:
        return self.settings.queues.devices


def lab_settings(nautobot_url: str, root: Path) -> Settings:
    return make_settings(
        nautobot=NautobotSettings(url=nautobot_url, token=NAUTOBOT_TOKEN, timeout=5),
        ssh=SshSettings(
            known_hosts=root / "known_hosts",
            accept_new=True,
            connect_timeout=5,
            command_timeout=5,
        ),
        git=GitSettings(checkout_root=root / "git", allow_file_urls=True, lock_wait=20),
    )


@contextlib.asynccontextmanager
async def running_lab(inventory: LabInventory, root: Path) -> AsyncIterator[DeviceLab]:
    """A started fleet for ``inventory`` and a Nautobot lab whose devices point at it."""
    fleet = fleet_for(inventory, username=LAB_USER, password=LAB_PASSWORD)
    async with fleet:
        attach_ssh_ports(inventory, fleet)
        async with NautobotLab(inventory, token=NAUTOBOT_TOKEN) as nautobot:
            yield DeviceLab(inventory, nautobot, fleet, lab_settings(nautobot.url, root), root)


@contextlib.asynccontextmanager
async def eight_device_lab(root: Path) -> AsyncIterator[DeviceLab]:
    """Eight devices (two per platform) over two sites with rooms."""
    async with running_lab(generate_inventory(8), root) as lab:
        yield lab


@contextlib.asynccontextmanager
async def serve_api(settings: Settings) -> AsyncIterator[str]:
    """The API for ``settings`` on a free loopback port (its own Nautobot client)."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def lab_api(services: Services, lab: DeviceLab) -> AsyncIterator[httpx.AsyncClient]:
    """An admin's client of an API that talks to the lab's Nautobot."""
    token = await token_for(services, Role.ADMIN, "admin")
    async with serve_api(lab.settings) as url:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, timeout=10, headers=headers) as http:
            yield http


def sealed_credential(
    services: Services,
    kind: CredentialType,
    secrets: Mapping[str, str],
    *,
    name: str,
    username: str,
    owner: str | None = None,
    is_global: bool = True,
) -> Credential:
    """A credential row with ``secrets`` sealed, as the API stores one."""
    key_id, ciphertext, fields = seal(services.keys, secrets)
    return Credential(
        name=name,
        type=kind.value,
        username=username,
        is_global=is_global,
        owner=owner,
        key_id=key_id,
        ciphertext=ciphertext,
        secret_fields=fields,
    )


async def add_credential(
    services: Services,
    *,
    username: str = LAB_USER,
    password: str = LAB_PASSWORD,
    owner: str = "admin",
    is_global: bool = True,
) -> int:
    row = sealed_credential(
        services,
        CredentialType.SSH_PASSWORD,
        {"password": password},
        name=f"{username}-{owner}-{is_global}",
        username=username,
        owner=owner,
        is_global=is_global,
    )
    async with services.sessions.begin() as session:
        session.add(row)
    return row.id


async def add_inventory(services: Services, tree: Mapping[str, Any], name: str = "lab") -> int:
    stored = parse_inventory_tree(tree).model_dump(by_alias=True, exclude_none=True)
    row = InventoryRow(name=name, tree=stored, owner="admin")
    async with services.sessions.begin() as session:
        session.add(row)
    return row.id


async def add_command_template(services: Services, content: str, name: str = "show") -> int:
    row = CommandTemplate(name=name, content=content, owner="admin")
    async with services.sessions.begin() as session:
        session.add(row)
        await session.flush()
        session.add(CommandTemplateVersion(template_id=row.id, version=1, content=content))
    return row.id


async def add_repository(services: Services, **values: Any) -> int:
    row = GitRepository(name=values.pop("name", "configs"), **values)
    async with services.sessions.begin() as session:
        session.add(row)
    return row.id


def condition(field: str, operator: str, value: str) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


def tree_of(*items: dict[str, Any], logic: str = "AND") -> dict[str, Any]:
    return {"type": "root", "internalLogic": logic, "items": list(items)}


async def run_device_job(
    services: Services,
    lab: DeviceLab,
    job_type: str,
    parameters: Mapping[str, Any],
    *,
    credential_id: int | None = None,
    executed_by: str = "admin",
) -> JobRun:
    """Queue a run (without the API's checks), drain the devices queue, return the run."""
    run_id = await enqueue_adhoc(
        services,
        lab.settings,
        job_type,
        parameters,
        executed_by=executed_by,
        credential_id=credential_id,
    )
    await drain(lab.settings, lab.devices_queue)
    return await load_run(services, run_id)


async def load_run(services: Services, run_id: int) -> JobRun:
    async with services.sessions() as session:
        return (await session.scalars(select(JobRun).where(JobRun.id == run_id))).one()


async def target_rows(services: Services, run_id: int) -> dict[str, JobRunTarget]:
    """The run's target rows by device name."""
    async with services.sessions() as session:
        rows = await session.scalars(
            select(JobRunTarget).where(JobRunTarget.run_id == run_id).order_by(JobRunTarget.name)
        )
        return {row.name: row for row in rows}
