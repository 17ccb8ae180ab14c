"""``opsjobs lab``: the simulated outside world on fixed loopback ports, seeded into the
database, so a fresh ``make run`` has real NiFi clusters to check.

Seeding is idempotent: rows are looked up by name and only created when missing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from service.credentials import seal
from service.db.engine import SessionFactory
from service.db.models import JobSchedule, JobTemplate
from service.db.security_models import Credential, CredentialType
from service.lab.nifi import NifiLab
from service.lab.nifi_topology import LabFlow
from service.nifi.models import NifiClusterRow, NifiInstanceRow
from service.schedules import spec_columns, validated_spec
from service.scheduling import first_fire
from service.secrets import KeyStore
from service.settings import LabSettings

logger = logging.getLogger(__name__)

LAB_OWNER = "lab"
NIFI_USER = "lab"
NIFI_PASSWORD = "lab-password"
NIFI_CREDENTIAL = "lab-nifi"
# Two clusters of three members; the second has one backlog past red so checks show colour.
LAB_CLUSTERS = (("lab-east", 11), ("lab-west", 23))
MEMBERS_PER_CLUSTER = 3
RED_QUEUE_FLOW_FILES = 25_000


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
    sessions: SessionFactory, keys: KeyStore, name: str, kind: CredentialType, secret: str
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
            username=NIFI_USER,
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


async def seed_nifi(sessions: SessionFactory, keys: KeyStore, clusters: list[LabCluster]) -> None:
    """NiFi clusters, instances, a check_queues template and its five-minute schedule."""
    credential_id = await _credential(
        sessions, keys, NIFI_CREDENTIAL, CredentialType.USERNAME_PASSWORD, NIFI_PASSWORD
    )
    async with sessions.begin() as session:
        for cluster in clusters:
            row = await session.scalar(
                select(NifiClusterRow).where(NifiClusterRow.name == cluster.name)
            )
            if row is not None:
                continue
            row = NifiClusterRow(name=cluster.name, description="lab simulator")
            session.add(row)
            await session.flush()
            for index, url in enumerate(cluster.member_urls):
                session.add(
                    NifiInstanceRow(
                        name=f"{cluster.name}-{index + 1}",
                        url=url,
                        auth_mode="username_password",
                        credential_id=credential_id,
                        cluster_id=row.id,
                        is_primary=index == 0,
                        description="lab simulator",
                    )
                )
        template = await session.scalar(
            select(JobTemplate).where(
                JobTemplate.name == "lab: queue backlog", JobTemplate.is_global
            )
        )
        if template is None:
            template = JobTemplate(
                name="lab: queue backlog",
                job_type="check_queues",
                description="Queue backlog traffic lights of every lab cluster",
                is_global=True,
                owner=LAB_OWNER,
                config={"mode": "both"},
            )
            session.add(template)
            await session.flush()
            spec = validated_spec({"schedule_type": "interval", "interval_minutes": 5})
            session.add(
                JobSchedule(
                    job_identifier="lab: queue backlog every 5 minutes",
                    template_id=template.id,
                    owner=LAB_OWNER,
                    next_run_at=first_fire(spec, datetime.now(UTC)),
                    **spec_columns(spec),
                )
            )
    logger.info("lab NiFi clusters seeded", extra={"clusters": len(clusters)})


async def serve_lab(
    settings: LabSettings, sessions: SessionFactory, keys: KeyStore, stop: asyncio.Event
) -> None:
    """Run the simulators and seed the database until ``stop`` is set."""
    async with nifi_lab(settings) as clusters:
        await seed_nifi(sessions, keys, clusters)
        logger.info("lab NiFi at http://%s:%s", settings.host, settings.nifi_port)
        await stop.wait()
