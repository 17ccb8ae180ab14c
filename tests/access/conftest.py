"""End-to-end set-up of the access tests: the device lab, and an API serving it to
operator alice, operator bob and an admin."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from sqlalchemy import select

from executors.services import Services
from service.db.engine import SessionFactory
from service.db.models import JobSchedule
from service.db.security_models import Role
from service.scheduling.claims import tick
from service.settings import Settings
from tests.conftest import token_for
from tests.device_lab import LAB_PASSWORD, LAB_USER, DeviceLab, eight_device_lab, serve_api


@pytest.fixture
async def device_lab(services: Services, tmp_path: Path) -> AsyncIterator[DeviceLab]:
    async with eight_device_lab(tmp_path) as lab:
        yield lab


@dataclass
class Team:
    """Clients of one API: alice and bob are operators, root an admin."""

    alice: httpx.AsyncClient
    bob: httpx.AsyncClient
    admin: httpx.AsyncClient
    settings: Settings


@contextlib.asynccontextmanager
async def team_for(services: Services, settings: Settings) -> AsyncIterator[Team]:
    async with serve_api(settings) as url, contextlib.AsyncExitStack() as stack:
        clients = []
        for username, role in (
            ("alice", Role.OPERATOR),
            ("bob", Role.OPERATOR),
            ("root", Role.ADMIN),
        ):
            token = await token_for(services, role, username)
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=url, timeout=20, headers={"Authorization": f"Bearer {token}"}
                    )
                )
            )
        yield Team(*clients, settings=settings)


@pytest.fixture
async def team(services: Services, device_lab: DeviceLab) -> AsyncIterator[Team]:
    async with team_for(services, device_lab.settings) as clients:
        yield clients


async def created(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> int:
    """POST ``body``; the new resource's id (the call must succeed)."""
    response = await client.post(path, json=body)
    assert response.status_code in (201, 202), response.text
    new_id: int = response.json()["id"]
    return new_id


async def device_credential(client: httpx.AsyncClient, name: str, *, is_global: bool) -> int:
    """A credential that logs in to the lab's devices."""
    body = {
        "name": name,
        "type": "ssh_password",
        "username": LAB_USER,
        "password": LAB_PASSWORD,
        "is_global": is_global,
    }
    return await created(client, "/api/credentials", body)


@dataclass(frozen=True)
class _Stores:
    settings: Settings
    sessions: SessionFactory
    redis: ArqRedis


async def fire_schedule(services: Services, settings: Settings, schedule_id: int) -> None:
    """A scheduler tick just after the schedule's next fire (queues on ``settings``' queues)."""
    async with services.sessions() as session:
        due = await session.scalar(
            select(JobSchedule.next_run_at).where(JobSchedule.id == schedule_id)
        )
    assert due is not None
    report = await tick(
        _Stores(settings, services.sessions, services.redis), due + timedelta(seconds=1)
    )
    assert report.queued == 1


def refusal(response: httpx.Response) -> tuple[int, list[list[Any]]]:
    """The status of a refusal in the error shape, and the places its details name."""
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return response.status_code, [item["loc"] for item in error["details"] or []]
