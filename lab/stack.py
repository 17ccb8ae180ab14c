"""``opsjobs lab``: the simulated outside world on fixed loopback ports, seeded into the
database, so a fresh ``make run`` has real NiFi clusters and network devices to work on.

Seeding is idempotent and reconciles: rows are looked up by name and created when missing,
and the addresses in rows that exist (NiFi instance URLs, the alert channels' ports) follow
the lab's settings; every change is logged as ``updated <what> <field> <old> → <new>``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncssh
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lab.alert_sink import AlertSink
from lab.devices import DeviceFleet, attach_ssh_ports, make_device
from lab.devices_cli import DIALECTS
from lab.nautobot import NautobotLab
from lab.nautobot_inventory import generate_inventory
from lab.nifi import NifiLab
from lab.nifi_topology import LabFlow
from service.access.credentials import seal
from service.db.device_models import CommandTemplate, GitRepository
from service.db.engine import SessionFactory
from service.db.models import JobSchedule, JobTemplate
from service.db.nifi_models import NifiClusterRow, NifiInstanceRow
from service.db.notify_models import ChannelType, NotificationChannel, NotificationRule
from service.db.security_models import Credential, CredentialType
from service.notify.events import EventName
from service.notify.senders import seal_secret
from service.scheduling.specs import next_fire
from service.scheduling.stored import spec_columns, validated_spec
from service.secrets import KeyStore
from service.settings import LabSettings, Settings

logger = logging.getLogger(__name__)

LAB_OWNER = "lab"
NIFI_USER = "lab"
NIFI_PASSWORD = "lab-password"
NIFI_CREDENTIAL = "lab-nifi"
# Two clusters of three members; the second has one backlog past red so checks show colour.
LAB_CLUSTERS = (("lab-east", 11), ("lab-west", 23))
MEMBERS_PER_CLUSTER = 3
RED_QUEUE_FLOW_FILES = 25_000
DEVICE_USER = "lab"
DEVICE_PASSWORD = "lab-password"
DEVICE_CREDENTIAL = "lab-devices"
LAB_NAUTOBOT_TOKEN = "lab-token"
BACKUP_TEMPLATE = "lab: config backup"
ALERT_RULE = "lab: backlog alerts"
WEBHOOK_CHANNEL = "lab: webhook receiver"
MAIL_CHANNEL = "lab: mail sink"
LAB_HOOK = "lab"
LAB_WEBHOOK_SECRET = "lab-webhook-secret-0123456789"


@dataclass(frozen=True)
class LabCluster:
    name: str
    member_urls: tuple[str, ...]


def _flow(seed: int, *, backlog: bool) -> LabFlow:
    flow = LabFlow.generate(seed, groups=6, connections=30)
    if backlog:
        first = next(iter(flow.connections))
        flow.set_queue(first, flow_files=RED_QUEUE_FLOW_FILES, bytes=250 * 1024 * 1024)
    return flow


@asynccontextmanager
async def nifi_lab(settings: LabSettings) -> AsyncIterator[list[LabCluster]]:
    """The NiFi simulator on ``settings.nifi_port`` with the lab clusters."""
    async with NifiLab(host=settings.host, port=settings.nifi_port) as lab:
        clusters = []
        for index, (name, seed) in enumerate(LAB_CLUSTERS):
            members = lab.add_cluster(
                name,
                members=MEMBERS_PER_CLUSTER,
                flow=_flow(seed, backlog=index == 1),
                users={NIFI_USER: NIFI_PASSWORD},
            )
            clusters.append(LabCluster(name, tuple(member.url for member in members)))
        yield clusters


async def _credential(
    sessions: SessionFactory,
    keys: KeyStore,
    name: str,
    kind: CredentialType,
    secret: str,
    *,
    username: str = NIFI_USER,
) -> int:
    async with sessions.begin() as session:
        existing = await session.scalar(
            select(Credential.id).where(Credential.name == name, Credential.is_global)
        )
        if existing is not None:
            return existing
        key_id, ciphertext, fields = seal(keys, {"password": secret})
        row = Credential(
            name=name,
            type=kind.value,
            username=username,
            description="credential of the lab simulators",
            is_global=True,
            owner=LAB_OWNER,
            key_id=key_id,
            ciphertext=ciphertext,
            secret_fields=fields,
        )
        session.add(row)
        await session.flush()
        return row.id


@dataclass(frozen=True)
class SeededTemplate:
    name: str
    job_type: str
    description: str
    config: dict[str, Any]
    every_minutes: int
    # The schedule's dead-man's switch (minutes without a successful run).
    expect_success_within: int | None = None
    # First fire at once (a fresh lab shows this verdict, and its alert, within a minute)
    # rather than one interval after seeding.
    fire_at_once: bool = False


NIFI_TEMPLATES = (
    SeededTemplate(
        "lab: queue backlog",
        "check_queues",
        "Queue backlog traffic lights of every lab cluster",
        {"mode": "both"},
        5,
        expect_success_within=15,
        fire_at_once=True,
    ),
    SeededTemplate(
        "lab: cluster health",
        "check_cluster",
        "Node states of every lab cluster (switch them with POST /lab/nodes/<name>)",
        {},
        5,
    ),
    # NiFi keeps bulletins five minutes: look more often than that.
    SeededTemplate(
        "lab: bulletins",
        "check_bulletins",
        "Warnings and errors posted on the lab clusters since the previous run",
        {},
        2,
    ),
)


async def _scheduled_template(session: AsyncSession, seeded: SeededTemplate) -> None:
    """The global template and its interval schedule, unless a template of that name exists."""
    exists = await session.scalar(
        select(JobTemplate.id).where(JobTemplate.name == seeded.name, JobTemplate.is_global)
    )
    if exists is not None:
        return
    template = JobTemplate(
        name=seeded.name,
        job_type=seeded.job_type,
        description=seeded.description,
        is_global=True,
        owner=LAB_OWNER,
        config=seeded.config,
    )
    session.add(template)
    await session.flush()
    spec = validated_spec({"schedule_type": "interval", "interval_minutes": seeded.every_minutes})
    now = datetime.now(UTC)
    session.add(
        JobSchedule(
            job_identifier=f"{seeded.name} every {seeded.every_minutes} minutes",
            template_id=template.id,
            owner=LAB_OWNER,
            next_run_at=now if seeded.fire_at_once else next_fire(spec, now),
            expect_success_within=seeded.expect_success_within,
            **spec_columns(spec),
        )
    )


def _reconcile(row: Any, what: str, field: str, wanted: object) -> bool:
    """Set ``row.<field>`` to ``wanted`` and log it when it differs; True when changed."""
    current = getattr(row, field)
    if current == wanted:
        return False
    setattr(row, field, wanted)
    logger.info("updated %s %s %s → %s", what, field, current, wanted)
    return True


async def seed_nifi(sessions: SessionFactory, keys: KeyStore, clusters: list[LabCluster]) -> None:
    """NiFi clusters, instances, and the NiFi templates with their schedules; the instance
    URLs of clusters seeded before follow the simulator's port."""
    credential_id = await _credential(
        sessions, keys, NIFI_CREDENTIAL, CredentialType.USERNAME_PASSWORD, NIFI_PASSWORD
    )
    seeded = updated = 0
    async with sessions.begin() as session:
        for cluster in clusters:
            row = await session.scalar(
                select(NifiClusterRow).where(NifiClusterRow.name == cluster.name)
            )
            if row is None:
                row = NifiClusterRow(name=cluster.name, description="lab simulator")
                session.add(row)
                await session.flush()
                seeded += 1
            for index, url in enumerate(cluster.member_urls):
                name = f"{cluster.name}-{index + 1}"
                instance = await session.scalar(
                    select(NifiInstanceRow).where(NifiInstanceRow.name == name)
                )
                if instance is None:
                    session.add(
                        NifiInstanceRow(
                            name=name,
                            url=url,
                            auth_mode="username_password",
                            credential_id=credential_id,
                            cluster_id=row.id,
                            is_primary=index == 0,
                            description="lab simulator",
                        )
                    )
                elif _reconcile(instance, f"NiFi instance {name}", "url", url):
                    updated += 1
        for template in NIFI_TEMPLATES:
            await _scheduled_template(session, template)
    if seeded:
        logger.info("lab NiFi clusters seeded: %s", seeded)
    if not seeded and not updated:
        logger.info("lab NiFi clusters up to date")


async def _reconcile_channel(session: AsyncSession, name: str, wanted: dict[str, object]) -> None:
    channel = await session.scalar(
        select(NotificationChannel).where(NotificationChannel.name == name)
    )
    if channel is None:
        return
    config = dict(channel.config)
    for key, value in wanted.items():
        if config.get(key) != value:
            logger.info("updated channel %s %s %s → %s", name, key, config.get(key), value)
            config[key] = value
    # A new dict, so the JSON column is seen as changed.
    channel.config = config


async def seed_alerts(
    sessions: SessionFactory, keys: KeyStore, sink: AlertSink, settings: LabSettings
) -> None:
    """Channels to the lab's webhook receiver and SMTP sink, and a rule sending the backlog
    check's verdicts (and failures) to both; channels seeded before follow the ports."""
    sink.secrets[LAB_HOOK] = LAB_WEBHOOK_SECRET
    hook_url = f"http://{settings.host}:{settings.alerts_port}/hooks/{LAB_HOOK}"
    async with sessions.begin() as session:
        if await session.scalar(
            select(NotificationRule.id).where(NotificationRule.name == ALERT_RULE)
        ):
            await _reconcile_channel(session, WEBHOOK_CHANNEL, {"url": hook_url})
            await _reconcile_channel(
                session, MAIL_CHANNEL, {"host": settings.host, "port": settings.smtp_port}
            )
            return
        template_id = await session.scalar(
            select(JobTemplate.id).where(JobTemplate.name == "lab: queue backlog")
        )
        key_id, ciphertext = seal_secret(keys, LAB_WEBHOOK_SECRET)
        webhook = NotificationChannel(
            name=WEBHOOK_CHANNEL,
            type=ChannelType.WEBHOOK.value,
            is_global=True,
            owner=LAB_OWNER,
            config={
                "url": hook_url,
                "headers": {},
                "verify_tls": True,
            },
            key_id=key_id,
            ciphertext=ciphertext,
        )
        mail = NotificationChannel(
            name=MAIL_CHANNEL,
            type=ChannelType.EMAIL.value,
            is_global=True,
            owner=LAB_OWNER,
            config={
                "host": settings.host,
                "port": settings.smtp_port,
                "security": "none",
                "credential_id": None,
                "from_address": "opsjobs@lab.example",
                "to": ["oncall@lab.example"],
                "verify_tls": True,
            },
        )
        session.add_all([webhook, mail])
        await session.flush()
        session.add(
            NotificationRule(
                name=ALERT_RULE,
                events=[
                    EventName.RUN_OUTCOME_CHANGED.value,
                    EventName.RUN_FAILED.value,
                    EventName.RUN_SUCCEEDED_AFTER_FAILURE.value,
                    EventName.SCHEDULE_UNHEALTHY.value,
                    EventName.SCHEDULE_RECOVERED.value,
                ],
                channel_ids=[webhook.id, mail.id],
                template_ids=[template_id] if template_id is not None else None,
                is_global=True,
                owner=LAB_OWNER,
            )
        )
    logger.info("lab alert rule seeded")


def prepare_lab_files(settings: Settings) -> asyncssh.SSHKey:
    """The lab devices' host key (made once) and a known_hosts entry trusting it.

    Blocking file I/O; done before workers start so they load a file that already trusts
    the lab (ports change between starts, hence the ``[host]:*`` pattern).
    """
    key_path = settings.lab.state_dir / "ssh_host_key"
    if key_path.exists():
        host_key = asyncssh.read_private_key(key_path)
    else:
        key_path.parent.mkdir(parents=True, exist_ok=True)
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        host_key.write_private_key(key_path)
        key_path.chmod(0o600)
    algorithm, blob = host_key.export_public_key("openssh").decode().split()[:2]
    entry = f"[{settings.lab.host}]:* {algorithm} {blob}\n"
    known_hosts = settings.ssh.known_hosts
    known = known_hosts.read_text() if known_hosts.exists() else ""
    if entry not in known:
        known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with known_hosts.open("a") as handle:
            handle.write(entry)
    return host_key


@asynccontextmanager
async def device_lab(
    settings: Settings, host_key: asyncssh.SSHKey
) -> AsyncIterator[tuple[NautobotLab, DeviceFleet]]:
    """A Nautobot simulator on ``lab.nautobot_port`` and one SSH simulator per device."""
    lab = settings.lab
    inventory = generate_inventory(lab.device_count, host=lab.host)
    devices = [
        make_device(device.name, device.platform.network_driver)
        for device in inventory.devices
        if device.platform is not None and device.platform.network_driver in DIALECTS
    ]
    async with DeviceFleet(
        devices, username=DEVICE_USER, password=DEVICE_PASSWORD, host=lab.host, host_key=host_key
    ) as fleet:
        attach_ssh_ports(inventory, fleet, field=settings.ssh.port_field)
        nautobot = NautobotLab(
            inventory,
            token=settings.nautobot.token or LAB_NAUTOBOT_TOKEN,
            host=lab.host,
            port=lab.nautobot_port,
        )
        await nautobot.start()
        try:
            yield nautobot, fleet
        finally:
            await nautobot.stop()


async def seed_devices(sessions: SessionFactory, keys: KeyStore) -> None:
    """A device credential, a configs repository, a command template and two templates."""
    credential_id = await _credential(
        sessions,
        keys,
        DEVICE_CREDENTIAL,
        CredentialType.SSH_PASSWORD,
        DEVICE_PASSWORD,
        username=DEVICE_USER,
    )
    async with sessions.begin() as session:
        if await session.scalar(select(JobTemplate.id).where(JobTemplate.name == BACKUP_TEMPLATE)):
            return
        repository = GitRepository(
            name="lab-configs", local_path="lab-configs", description="lab device configurations"
        )
        commands = CommandTemplate(
            name="lab: show version",
            content="show version",
            description="platform and uptime of each lab device",
            is_global=True,
            owner=LAB_OWNER,
        )
        session.add_all([repository, commands])
        await session.flush()
        session.add_all(
            [
                JobTemplate(
                    name="lab: show version",
                    job_type="run_commands",
                    description="show version on every lab device",
                    is_global=True,
                    owner=LAB_OWNER,
                    config={
                        "targets": {"all": True},
                        "command_template_id": commands.id,
                        "credential_id": credential_id,
                    },
                ),
                JobTemplate(
                    name=BACKUP_TEMPLATE,
                    job_type="backup",
                    description="running and startup configurations of every lab device to git",
                    is_global=True,
                    owner=LAB_OWNER,
                    config={
                        "targets": {"all": True},
                        "repository_id": repository.id,
                        "credential_id": credential_id,
                    },
                ),
            ]
        )
    logger.info("lab devices seeded")


async def serve_lab(
    settings: Settings, sessions: SessionFactory, keys: KeyStore, stop: asyncio.Event
) -> None:
    """Run the simulators and seed the database until ``stop`` is set."""
    host_key = await asyncio.to_thread(prepare_lab_files, settings)
    async with (
        nifi_lab(settings.lab) as clusters,
        device_lab(settings, host_key) as (
            nautobot,
            fleet,
        ),
        AlertSink(
            host=settings.lab.host,
            http_port=settings.lab.alerts_port,
            smtp_port=settings.lab.smtp_port,
        ) as sink,
    ):
        await seed_nifi(sessions, keys, clusters)
        await seed_devices(sessions, keys)
        await seed_alerts(sessions, keys, sink, settings.lab)
        logger.info(
            "lab up: NiFi at http://%s:%s, Nautobot at %s, %s SSH devices, alerts received "
            "listed at http://%s:%s/received (SMTP sink on port %s)",
            settings.lab.host,
            settings.lab.nifi_port,
            nautobot.url,
            len(fleet.devices),
            settings.lab.host,
            sink.http.port,
            sink.smtp_port,
        )
        await stop.wait()
