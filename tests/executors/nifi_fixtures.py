"""Shared set-up of the NiFi job-type tests: clusters registered over the API and
served by the lab, and ad-hoc runs drained through a real worker."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

from executors.services import Services
from lab.nifi import LabFlow, LabInstance, NifiLab
from tests.workers import drain, enqueue_adhoc

NIFI_USER = "nifi-operator"
NIFI_PASSWORD = "canary-5b2e9d71-nifi-password"
_counter = itertools.count(1)


@dataclass(frozen=True)
class RegisteredCluster:
    id: int
    name: str
    nodes: list[LabInstance]
    instance_names: list[str]


async def username_password_credential(client: httpx.AsyncClient) -> int:
    """A global username/password credential for the lab's secured instances."""
    response = await client.post(
        "/api/credentials",
        json={
            "name": f"nifi-{next(_counter)}",
            "type": "username_password",
            "username": NIFI_USER,
            "password": NIFI_PASSWORD,
            "is_global": True,
        },
    )
    assert response.status_code == 201, response.text
    credential_id: int = response.json()["id"]
    return credential_id


async def register_cluster(
    client: httpx.AsyncClient,
    lab: NifiLab,
    flow: LabFlow,
    *,
    members: int = 1,
    credential_id: int | None = None,
    latency: float = 0.0,
) -> RegisteredCluster:
    """Lab nodes sharing ``flow``, stored as instances and one cluster (first primary);
    with a credential the nodes demand a username/password login."""
    name = f"cluster-{next(_counter)}"
    users = {NIFI_USER: NIFI_PASSWORD} if credential_id is not None else None
    nodes = lab.add_cluster(name, members=members, flow=flow, users=users, latency=latency)
    ids = []
    for node in nodes:
        body: dict[str, Any] = {"name": f"{node.name}.example", "url": node.url}
        if credential_id is not None:
            body.update(auth_mode="username_password", credential_id=credential_id)
        response = await client.post(
            "/api/nifi/instances", json={**body, "connect_timeout": 2, "read_timeout": 10}
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    response = await client.post(
        "/api/nifi/clusters",
        json={
            "name": name,
            "members": [{"instance_id": i, "is_primary": i == ids[0]} for i in ids],
        },
    )
    assert response.status_code == 201, response.text
    return RegisteredCluster(
        id=response.json()["id"],
        name=name,
        nodes=nodes,
        instance_names=[f"{node.name}.example" for node in nodes],
    )


def queue_flow(**queues: int) -> LabFlow:
    """A canvas with one connection per keyword (its flow-file count) in group Ingest."""
    flow = LabFlow(seed=7)
    ingest = flow.add_group("Ingest", running=2)
    for name, flow_files in queues.items():
        flow.add_connection(
            name,
            ingest.id,
            source_name=f"{name}-source",
            destination_name=f"{name}-sink",
            flow_files=flow_files,
        )
    return flow


async def run_job(
    client: httpx.AsyncClient, services: Services, job_type: str, parameters: dict[str, Any]
) -> dict[str, Any]:
    """Create an ad-hoc run, drain the default queue, return the run with its targets."""
    created = await client.post(
        "/api/job-runs", json={"job_type": job_type, "parameters": parameters}
    )
    assert created.status_code == 202, created.text
    await drain(services.settings)
    run: dict[str, Any] = (await client.get(f"/api/job-runs/{created.json()['id']}")).json()
    return run


async def run_queued_job(
    client: httpx.AsyncClient, services: Services, job_type: str, parameters: dict[str, Any]
) -> dict[str, Any]:
    """A run queued without the API's checks (as a schedule whose cluster went away after
    it was saved would be), drained through a real worker; the run with its targets."""
    run_id = await enqueue_adhoc(services, services.settings, job_type, parameters)
    await drain(services.settings)
    run: dict[str, Any] = (await client.get(f"/api/job-runs/{run_id}")).json()
    return run


def targets_by_name(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in run["target_rows"]["items"]}
