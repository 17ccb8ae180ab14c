"""The CLI over a network that loses answers and drops streams (a proxy in front of the API)."""

from __future__ import annotations

import json
import re

from tests.client.conftest import CliStack
from tests.client.faulty_proxy import Faults, faulty_proxy

STREAM_ID = re.compile(r"^\d+-\d+$")


async def test_a_lost_answer_is_retried_with_the_same_idempotency_key(cli: CliStack) -> None:
    faults = Faults(lose_post_answers=1)
    async with faulty_proxy(cli.url, faults) as url:
        result = await cli.opsjobs(
            "run", "diag.echo", "--no-wait", "-o", "json", user="alice", env={"OPSJOBS_URL": url}
        )
    assert result.code == 0, result.err
    assert json.loads(result.out)["job_type"] == "diag.echo"
    assert len(faults.idempotency_keys) == 2
    first, second = faults.idempotency_keys
    assert first is not None
    assert first == second
    # Another logical request gets another key.
    async with faulty_proxy(cli.url, faults) as url:
        again = await cli.opsjobs(
            "run", "diag.echo", "--no-wait", user="alice", env={"OPSJOBS_URL": url}
        )
    assert again.code == 0, again.err
    assert faults.idempotency_keys[2] not in (None, first)


async def test_watch_resumes_a_dropped_stream_after_the_last_event(cli: CliStack) -> None:
    faults = Faults(cut_streams=1)
    async with faulty_proxy(cli.url, faults) as url:
        result = await cli.opsjobs(
            "run",
            "diag.progress",
            "-p",
            "steps=5",
            "-p",
            "delay=0.2",
            user="alice",
            env={"OPSJOBS_URL": url},
        )
    assert result.code == 0, result.err
    assert faults.last_event_ids[0] == "0-0"
    assert len(faults.last_event_ids) >= 2
    resumed = faults.last_event_ids[1]
    assert resumed is not None
    assert STREAM_ID.match(resumed)
    assert resumed != "0-0"
    for step in range(1, 6):
        assert result.err.count(f" progress {step}/5") == 1, result.err
    assert result.err.count("state completed") == 1


async def test_a_service_that_keeps_failing_exits_3_after_the_retries(cli: CliStack) -> None:
    faults = Faults(lose_post_answers=10)
    async with faulty_proxy(cli.url, faults) as url:
        result = await cli.opsjobs("run", "diag.echo", user="alice", env={"OPSJOBS_URL": url})
    assert result.code == 3
    lines = result.err.strip().splitlines()
    assert lines == [f"opsjobs: the API at {url} failed (503): lost"]
    # The first try and three retries, all one logical request.
    assert len(faults.idempotency_keys) == 4
    assert len(set(faults.idempotency_keys)) == 1
