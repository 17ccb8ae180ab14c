"""Invariant 7 for the NiFi job types: a username/password credential used by runs and by
the connection test shows up in no API response, log record, Redis key or value, run
result or target row."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import text

from executors.services import Services
from lab.nifi import LabFlow, NifiLab
from tests.executors.nifi_fixtures import (
    NIFI_PASSWORD,
    queue_flow,
    register_cluster,
    run_job,
    username_password_credential,
)

CANARY = NIFI_PASSWORD.encode()


@pytest.fixture(scope="module")
async def lab() -> AsyncIterator[NifiLab]:
    async with NifiLab() as running:
        yield running


async def redis_contents(services: Services) -> bytes:
    chunks = []
    async for key in services.redis.scan_iter():
        chunks.append(key)
        kind = (await services.redis.type(key)).decode()
        if kind == "string":
            chunks.append(await services.redis.get(key) or b"")
        elif kind == "stream":
            chunks.append(repr(await services.redis.xrange(key)).encode())
        elif kind == "zset":
            chunks.append(repr(await services.redis.zrange(key, 0, -1)).encode())
        elif kind == "hash":
            chunks.append(repr(await cast(Awaitable[Any], services.redis.hgetall(key))).encode())
        elif kind == "list":
            chunks.append(
                repr(await cast(Awaitable[Any], services.redis.lrange(key, 0, -1))).encode()
            )
    return b"".join(chunks)


async def stored_run_data(services: Services) -> str:
    async with services.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT parameters::text, result::text, summary, error FROM job_runs "
                "UNION ALL SELECT key, result::text, name, error FROM job_run_targets "
                "UNION ALL SELECT action, details::text, resource_type, resource_id "
                "FROM audit_events"
            )
        )
        return repr(rows.all())


async def test_the_nifi_password_travels_nowhere(
    client: httpx.AsyncClient,
    services: Services,
    lab: NifiLab,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    credential = await username_password_credential(client)
    cluster = await register_cluster(
        client, lab, queue_flow(stuck=20000), members=2, credential_id=credential
    )
    # A node that refuses the password: the login error must not quote it either.
    refusing = await register_cluster(client, lab, LabFlow(), credential_id=credential)
    refusing.nodes[0].users = {"nifi-operator": "another-password"}

    queues = await run_job(client, services, "check_queues", {})
    group = await run_job(
        client,
        services,
        "check_process_group",
        {"cluster_id": cluster.id, "process_group_id": "root", "check_children": False},
    )
    instance_id = (
        await client.get("/api/nifi/instances", params={"cluster_id": cluster.id})
    ).json()["items"][0]["id"]
    tested = await client.post(f"/api/nifi/instances/{instance_id}/test")

    assert queues["outcome"] == "critical"
    statuses = {c["cluster_name"]: c["status"] for c in queues["result"]["clusters"]}
    assert statuses == {cluster.name: "red", refusing.name: "red"}
    refused = next(c for c in queues["result"]["clusters"] if c["cluster_name"] == refusing.name)
    assert "401" in refused["error"] or "login" in refused["error"]
    assert group["status"] == "completed"
    assert tested.json()["auth"]["ok"] is True
    assert cluster.nodes[0].login_count >= 1  # the password really was used

    responses = [
        queues,
        group,
        tested.text,
        (await client.get("/api/job-runs")).text,
        (await client.get(f"/api/job-runs/{queues['id']}/targets")).text,
        (await client.get("/api/nifi/instances")).text,
        (await client.get("/api/nifi/clusters")).text,
        (await client.get(f"/api/credentials/{credential}")).text,
        (await client.get("/api/audit")).text,
    ]
    assert NIFI_PASSWORD not in repr(responses)
    assert NIFI_PASSWORD not in caplog.text
    assert all(NIFI_PASSWORD not in repr(record.__dict__) for record in caplog.records)
    assert CANARY not in await redis_contents(services)
    assert NIFI_PASSWORD not in await stored_run_data(services)
