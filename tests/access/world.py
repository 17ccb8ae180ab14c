"""A fresh world for one authorisation case: operator alice's private resources, global
ones everybody may use, and the five actors (admin, owner, other operator, viewer,
anonymous) with their API clients.

Rows are written straight to the database (one transaction per world), so each of the
matrix's cases starts from resources nobody has touched yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from executors.services import Services
from service.access.tokens import hash_token, new_token
from service.db.device_models import (
    CommandTemplate,
    CommandTemplateVersion,
    DeviceBackupFile,
    GitRepository,
    Inventory,
)
from service.db.models import JobRun, JobSchedule, JobTemplate, RunStatus, TriggeredBy
from service.db.nifi_models import AuthMode, NifiClusterRow, NifiInstanceRow
from service.db.notify_models import (
    MaintenanceWindow,
    NotificationChannel,
    NotificationDelivery,
    NotificationEvent,
    NotificationRule,
)
from service.db.security_models import ApiToken, Credential, CredentialType, Role
from service.gitstore.git import GitIdentity, run_git
from tests.conftest import token_for
from tests.device_lab import sealed_credential

ROLES = ("admin", "owner", "other", "viewer", "anonymous")
OWNER = "alice"
USERS = {
    "admin": ("root", Role.ADMIN),
    "owner": (OWNER, Role.OPERATOR),
    "other": ("bob", Role.OPERATOR),
    "viewer": ("vera", Role.VIEWER),
}
#: A loopback port nothing listens on: connection tests fail at once.
CLOSED_URL = "http://127.0.0.1:9/nifi-api"
DEVICE_ID = "device-1"
TREE = {
    "type": "root",
    "internalLogic": "AND",
    "items": [{"field": "name", "operator": "contains", "value": "a"}],
}
_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


@dataclass
class World:
    """Ids of what one case works on: ``mine`` are alice's private resources (or shared
    ones holding her private credentials), ``shared`` are usable by everyone."""

    mine: dict[str, int] = field(default_factory=dict)
    shared: dict[str, int] = field(default_factory=dict)
    commit: str = ""


@dataclass
class Actors:
    """One API client per role (``anonymous`` has no token)."""

    clients: dict[str, httpx.AsyncClient]
    usernames: dict[str, str]


@contextlib.asynccontextmanager
async def actors(services: Services, api_url: str) -> AsyncIterator[Actors]:
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, httpx.AsyncClient] = {}
        for role, (username, token_role) in USERS.items():
            token = await token_for(services, token_role, username)
            headers = {"Authorization": f"Bearer {token}"}
            clients[role] = await stack.enter_async_context(
                httpx.AsyncClient(base_url=api_url, timeout=20, headers=headers)
            )
        clients["anonymous"] = await stack.enter_async_context(
            httpx.AsyncClient(base_url=api_url, timeout=20)
        )
        usernames = {role: username for role, (username, _) in USERS.items()}
        yield Actors(clients, usernames)


def _credential(
    services: Services, kind: CredentialType, owner: str, is_global: bool
) -> Credential:
    secrets = {"token": "t0ken"} if kind is CredentialType.TOKEN else {"password": "pw"}
    return sealed_credential(
        services,
        kind,
        secrets,
        name=unique(kind.value),
        username="user",
        owner=owner,
        is_global=is_global,
    )


def _command_template(owner: str, is_global: bool) -> CommandTemplate:
    return CommandTemplate(
        name=unique("ct"), content="show version\n", owner=owner, is_global=is_global
    )


def _run(status: RunStatus, template: JobTemplate, schedule: JobSchedule) -> JobRun:
    return JobRun(
        job_name="private",
        job_type="diag.echo",
        queue="t-default",
        status=status.value,
        triggered_by=TriggeredBy.MANUAL.value,
        executed_by=OWNER,
        private_to=OWNER,
        parameters={"message": "private"},
        template_id=template.id,
        schedule_id=schedule.id,
    )


async def build_world(services: Services, checkout_root: Path | None = None) -> World:
    """Alice's private resources of every kind, and global ones, in one transaction;
    with ``checkout_root``, her repository's checkout holding one device's backup."""
    world = World()
    async with services.sessions.begin() as session:
        creds = {
            "credential": _credential(services, CredentialType.SSH_PASSWORD, OWNER, False),
            "nifi_credential": _credential(
                services, CredentialType.USERNAME_PASSWORD, OWNER, False
            ),
            "token_credential": _credential(services, CredentialType.TOKEN, OWNER, False),
            # A TLS store's password (the store itself a file on the NiFi host).
            "tls_credential": _credential(services, CredentialType.TLS_KEYSTORE, OWNER, False),
        }
        shared_credential = _credential(services, CredentialType.SSH_PASSWORD, "root", True)
        inventory = Inventory(name=unique("inv"), tree=TREE, owner=OWNER, is_global=False)
        shared_inventory = Inventory(name=unique("inv"), tree=TREE, owner="root", is_global=True)
        command_template = _command_template(OWNER, False)
        shared_command_template = _command_template("root", True)
        template = JobTemplate(
            name=unique("tpl"),
            job_type="diag.echo",
            config={"message": "m"},
            is_global=False,
            owner=OWNER,
        )
        session.add_all(
            [*creds.values(), shared_credential, inventory, shared_inventory, command_template]
        )
        session.add_all([shared_command_template, template])
        await session.flush()
        for row in (command_template, shared_command_template):
            session.add(CommandTemplateVersion(template_id=row.id, version=1, content=row.content))
        schedule = JobSchedule(
            job_identifier=unique("sched"),
            template_id=template.id,
            schedule_type="interval",
            interval_minutes=60,
            is_active=False,
            is_global=False,
            owner=OWNER,
        )
        repository = GitRepository(
            name=unique("repo"),
            url="https://git.example.invalid/alice.git",
            local_path=unique("checkout"),
            credential_id=creds["token_credential"].id,
        )
        shared_repository = GitRepository(name=unique("repo"), local_path=unique("checkout"))
        cluster = NifiClusterRow(name=unique("cluster"))
        shared_cluster = NifiClusterRow(name=unique("cluster"))
        empty_cluster = NifiClusterRow(name=unique("cluster"))
        session.add_all(
            [schedule, repository, shared_repository, cluster, shared_cluster, empty_cluster]
        )
        await session.flush()

        def instance(credential: Credential | None, cluster_id: int | None) -> NifiInstanceRow:
            return NifiInstanceRow(
                name=unique("nifi"),
                url=CLOSED_URL,
                auth_mode=(AuthMode.USERNAME_PASSWORD if credential else AuthMode.NONE).value,
                credential_id=credential.id if credential else None,
                cluster_id=cluster_id,
                is_primary=cluster_id is not None,
                connect_timeout=1,
                read_timeout=1,
            )

        instances = {
            "nifi_instance": instance(creds["nifi_credential"], cluster.id),
            "free_nifi_instance": instance(creds["nifi_credential"], None),
            "shared_nifi_instance": instance(None, shared_cluster.id),
            "shared_free_nifi_instance": instance(None, None),
        }
        done = _run(RunStatus.COMPLETED, template, schedule)
        pending = _run(RunStatus.PENDING, template, schedule)
        session.add_all([*instances.values(), done, pending])
        await session.flush()
        # A token of alice's of its own: revoking it leaves her client's token alone.
        token = ApiToken(
            name=unique("token"),
            username=OWNER,
            role=Role.OPERATOR.value,
            token_hash=hash_token(new_token()),
            prefix="ojt_",
        )
        session.add(token)
        session.add(
            DeviceBackupFile(
                device_id=DEVICE_ID,
                device_name="dev-1",
                repository_id=repository.id,
                kind="running",
                path="site/dev-1.running-config",
            )
        )
        notify = await _notifications(session, done.id, inventory.id)
    world.mine = {
        **{name: row.id for name, row in creds.items()},
        "inventory": inventory.id,
        "command_template": command_template.id,
        "job_template": template.id,
        "job_schedule": schedule.id,
        "git_repository": repository.id,
        "nifi_cluster": cluster.id,
        "nifi_instance": instances["nifi_instance"].id,
        "free_nifi_instance": instances["free_nifi_instance"].id,
        "job_run": done.id,
        "pending_run": pending.id,
        "api_token": token.id,
        **notify,
    }
    world.shared = {
        "credential": shared_credential.id,
        "inventory": shared_inventory.id,
        "command_template": shared_command_template.id,
        "git_repository": shared_repository.id,
        "nifi_cluster": shared_cluster.id,
        "empty_nifi_cluster": empty_cluster.id,
        "free_nifi_instance": instances["shared_free_nifi_instance"].id,
        "notification_channel": await _shared_channel(services),
    }
    if checkout_root is not None:
        world.commit = await _checkout(checkout_root / (repository.local_path or ""))
    return world


def _channel(owner: str, is_global: bool) -> NotificationChannel:
    return NotificationChannel(
        name=unique("channel"),
        type="webhook",
        is_global=is_global,
        owner=owner,
        config={"url": "http://127.0.0.1:9/hook", "headers": {}, "verify_tls": True},
    )


async def _notifications(session: AsyncSession, run_id: int, inventory_id: int) -> dict[str, int]:
    """Alice's private channel, a rule sending there, a delivery of her private run's
    failure, and a private maintenance window over her inventory."""
    channel = _channel(OWNER, False)
    session.add(channel)
    await session.flush()
    rule = NotificationRule(
        name=unique("rule"),
        events=["run.failed"],
        channel_ids=[channel.id],
        is_global=False,
        owner=OWNER,
    )
    event = NotificationEvent(
        event="run.failed",
        dedup_key=unique("dedup"),
        subject=f"run:{run_id}",
        run_id=run_id,
        job_type="diag.echo",
        is_global=False,
        owner=OWNER,
        severity="critical",
        title="private run failed",
        message="private",
        routed=True,
    )
    window = MaintenanceWindow(
        name=unique("window"),
        start_at=datetime(2099, 1, 1, tzinfo=UTC),
        end_at=datetime(2099, 1, 2, tzinfo=UTC),
        inventory_id=inventory_id,
        is_global=False,
        owner=OWNER,
    )
    session.add_all([rule, event, window])
    await session.flush()
    delivery = NotificationDelivery(event_id=event.id, rule_id=rule.id, channel_id=channel.id)
    session.add(delivery)
    await session.flush()
    return {
        "notification_channel": channel.id,
        "notification_rule": rule.id,
        "notification_delivery": delivery.id,
        "maintenance_window": window.id,
    }


async def _shared_channel(services: Services) -> int:
    row = _channel("root", True)
    async with services.sessions.begin() as session:
        session.add(row)
    return row.id


async def _checkout(path: Path) -> str:
    """A checkout holding one backed-up file in one commit; returns the commit."""
    identity = GitIdentity()
    await asyncio.to_thread(_write_file, path / "site" / "dev-1.running-config")
    await run_git(["init", "-q", "-b", "main"], cwd=path, identity=identity)
    await run_git(["add", "-A"], cwd=path, identity=identity)
    await run_git(["commit", "-q", "-m", "backup"], cwd=path, identity=identity)
    _, out, _ = await run_git(["rev-parse", "HEAD"], cwd=path, identity=identity)
    return out.decode().strip()


def _write_file(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text("hostname dev-1\n")


async def add_template(
    services: Services, owner: str, job_type: str, config: Mapping[str, Any], *, is_global: bool
) -> int:
    row = JobTemplate(
        name=unique("tpl"), job_type=job_type, config=dict(config), is_global=is_global, owner=owner
    )
    async with services.sessions.begin() as session:
        session.add(row)
    return row.id


async def add_schedule(
    services: Services, owner: str, template_id: int, *, is_global: bool = True
) -> int:
    row = JobSchedule(
        job_identifier=unique("sched"),
        template_id=template_id,
        schedule_type="interval",
        interval_minutes=60,
        is_active=False,
        is_global=is_global,
        owner=owner,
    )
    async with services.sessions.begin() as session:
        session.add(row)
    return row.id


async def add_channel(services: Services, owner: str, kind: str, config: Mapping[str, Any]) -> int:
    row = NotificationChannel(
        name=unique("channel"), type=kind, is_global=False, owner=owner, config=dict(config)
    )
    async with services.sessions.begin() as session:
        session.add(row)
    return row.id


async def add_rule(services: Services, owner: str, channel_id: int) -> int:
    row = NotificationRule(
        name=unique("rule"),
        events=["run.failed"],
        channel_ids=[channel_id],
        is_global=False,
        owner=owner,
    )
    async with services.sessions.begin() as session:
        session.add(row)
    return row.id


async def add_window(services: Services, owner: str) -> int:
    row = MaintenanceWindow(
        name=unique("window"),
        start_at=datetime(2099, 3, 1, tzinfo=UTC),
        end_at=datetime(2099, 3, 2, tzinfo=UTC),
        is_global=False,
        owner=owner,
    )
    async with services.sessions.begin() as session:
        session.add(row)
    return row.id
