"""``GET /api/job-runs/{id}/events``: a run followed live from start to end, and resumed."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from executors.services import Services
from service.runs.events import HEARTBEAT
from tests.workers import running_worker, wait_for_run

STEPS = 5


@dataclass(frozen=True)
class Sse:
    id: str | None
    event: str
    data: dict[str, Any]


def parse_sse(raw: str) -> tuple[list[Sse], int]:
    """Events and the number of comment (heartbeat) frames of an SSE body."""
    events: list[Sse] = []
    comments = 0
    for frame in raw.split("\n\n"):
        if not frame.strip():
            continue
        fields: dict[str, str] = {}
        for line in frame.split("\n"):
            if line.startswith(":"):
                comments += 1
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if fields:
            events.append(Sse(fields.get("id"), fields["event"], json.loads(fields["data"])))
    return events, comments


async def read_stream(
    client: httpx.AsyncClient, run_id: int, last_event_id: str | None = None
) -> tuple[list[Sse], int]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with client.stream(
        "GET", f"/api/job-runs/{run_id}/events", headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        body = (await response.aread()).decode()
    return parse_sse(body)


async def start_progress_run(client: httpx.AsyncClient, delay: float) -> int:
    created = await client.post(
        "/api/job-runs",
        json={"job_type": "diag.progress", "parameters": {"steps": STEPS, "delay": delay}},
    )
    assert created.status_code == 202, created.text
    run_id: int = created.json()["id"]
    return run_id


async def test_a_run_is_followed_from_start_to_its_final_state(
    client: httpx.AsyncClient, services: Services
) -> None:
    run_id = await start_progress_run(client, delay=0.05)
    # Connected while the run is still pending: the stream starts at its first event.
    async with client.stream("GET", f"/api/job-runs/{run_id}/events", timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async with running_worker(services.settings):
            events, _ = parse_sse((await response.aread()).decode())
    assert [event.event for event in events] == ["state"] + ["progress"] * (STEPS + 1) + ["state"]
    assert events[0].data == {"status": "running", "attempt": 1}
    assert [event.data["current"] for event in events[1:-1]] == list(range(STEPS + 1))
    assert events[-2].data["percent"] == 100.0
    assert events[-1].data == {
        "status": "completed",
        "outcome": "ok",
        "summary": f"{STEPS} steps done",
    }
    ids = [event.id for event in events]
    assert all(ids)
    assert len(set(ids)) == len(ids)
    # Every event is the stream entry of the same id, in order.
    entries = await services.redis.xrange(services.keyspace.run_events(run_id))
    assert [entry_id.decode() for entry_id, _ in entries] == ids
    run = await wait_for_run(services.sessions, run_id)
    assert run.status == "completed"


async def test_a_resumed_stream_skips_the_events_already_seen(
    client: httpx.AsyncClient, services: Services
) -> None:
    run_id = await start_progress_run(client, delay=0.3)
    seen: list[Sse] = []
    async with (
        client.stream("GET", f"/api/job-runs/{run_id}/events", timeout=30) as response,
        running_worker(services.settings),
    ):
        buffer = ""
        async for chunk in response.aiter_text():
            buffer += chunk
            complete, _, buffer = buffer.rpartition("\n\n")
            seen += parse_sse(complete)[0]
            if len(seen) >= 3:  # running, progress 0, progress 1: enough seen
                break
        assert seen[-1].event == "progress"
        resumed, _ = await read_stream(client, run_id, last_event_id=seen[-1].id)
    assert resumed[-1].data["status"] == "completed"
    entries = await services.redis.xrange(services.keyspace.run_events(run_id))
    all_ids = [entry_id.decode() for entry_id, _ in entries]
    # Nothing seen is sent again, nothing is missed.
    assert [event.id for event in seen] + [event.id for event in resumed] == all_ids
    assert resumed[0].data["current"] == seen[-1].data["current"] + 1


async def test_a_finished_run_sends_its_final_state_and_closes(
    client: httpx.AsyncClient, services: Services
) -> None:
    run_id = await start_progress_run(client, delay=0)
    async with running_worker(services.settings):
        await wait_for_run(services.sessions, run_id)
    events, _ = await read_stream(client, run_id)
    assert [(event.event, event.data["status"]) for event in events] == [("state", "completed")]
    assert events[0].id is not None
    # "0-0" replays the whole stream of a finished run.
    replayed, _ = await read_stream(client, run_id, last_event_id="0-0")
    assert len(replayed) == STEPS + 3
    assert replayed[-1].id == events[0].id


async def test_a_pending_run_cancelled_ends_the_stream_from_its_row(
    client: httpx.AsyncClient, services: Services
) -> None:
    """A run cancelled before it started has no final event: the run row provides it."""
    run_id = await start_progress_run(client, delay=0)
    async with client.stream("GET", f"/api/job-runs/{run_id}/events", timeout=30) as response:
        cancelled = await client.post(f"/api/job-runs/{run_id}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        events, _ = parse_sse((await response.aread()).decode())
    assert [(event.id, event.event) for event in events] == [(None, "state")]
    assert events[0].data["status"] == "cancelled"


async def wait_for_event_readers(services: Services, *, present: bool) -> None:
    """Wait until a Redis connection that last ran XREAD is (or no longer is) open."""
    db = str(services.redis.connection_pool.connection_kwargs.get("db", 0))
    async with asyncio.timeout(5):
        while True:
            clients = await services.redis.client_list()
            readers = [c for c in clients if c.get("cmd") == "xread" and c.get("db") == db]
            if bool(readers) == present:
                return
            await asyncio.sleep(0.02)


async def test_a_watcher_that_goes_away_frees_its_redis_connection(
    client: httpx.AsyncClient, services: Services
) -> None:
    run_id = await start_progress_run(client, delay=0)  # stays pending: no worker
    async with client.stream("GET", f"/api/job-runs/{run_id}/events", timeout=30) as response:
        assert response.status_code == 200
        await wait_for_event_readers(services, present=True)
    await wait_for_event_readers(services, present=False)


async def test_unknown_run_and_bad_resume_ids(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/job-runs/999999/events")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    run_id = await start_progress_run(client, delay=0)
    bad = await client.get(f"/api/job-runs/{run_id}/events", headers={"Last-Event-ID": "not-an-id"})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["loc"] == ["header", "Last-Event-ID"]


def test_heartbeat_is_a_comment() -> None:
    events, comments = parse_sse(HEARTBEAT.decode())
    assert (events, comments) == ([], 1)
