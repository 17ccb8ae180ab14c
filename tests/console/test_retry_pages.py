"""The console shows a retried run's attempts and when its next one is due, and a
template's retry policy (over HTTP, no browser)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from executors.services import Services
from service.db.models import JobRun, JobTemplate
from service.db.security_models import Role
from service.runs import lifecycle
from service.runs.retries import AttemptEnd, RetryOn, RetryPolicy, schedule_retry
from tests.conftest import token_for
from tests.console.test_sessions import sign_in
from tests.workers import enqueue_adhoc


@pytest.fixture
async def viewer(console_url: str, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=console_url, timeout=10) as http:
        await sign_in(http, await token_for(services, Role.VIEWER, "vic"))
        yield http


async def test_a_run_between_attempts_shows_its_attempts_and_next_attempt(
    viewer: httpx.AsyncClient, services: Services
) -> None:
    run_id = await enqueue_adhoc(services, services.settings, "diag.echo", {})
    async with services.sessions.begin() as session:
        policy = RetryPolicy(max_attempts=3, backoff_seconds=300, on=[RetryOn.FAILED])
        run = await session.get_one(JobRun, run_id)
        run.max_attempts = policy.max_attempts
        run.retry_policy = policy.stored()
    assert await lifecycle.mark_running(services.sessions, run_id, "w1") is not None
    failed = AttemptEnd(failure=RetryOn.FAILED, error="NiFi node restarting")
    assert await schedule_retry(services.sessions, run_id, 1, failed) is not None

    page = await viewer.get(f"/runs/{run_id}")
    assert page.status_code == 200
    assert "1 of 3 · next attempt at" in page.text
    assert 'id="attempts"' in page.text
    assert 'data-attempt="1"' in page.text
    assert "NiFi node restarting" in page.text


async def test_a_template_page_shows_its_retry_policy(
    viewer: httpx.AsyncClient, services: Services
) -> None:
    policy = RetryPolicy(max_attempts=4, backoff_seconds=5, on=[RetryOn.FAILED, RetryOn.LOST])
    async with services.sessions.begin() as session:
        template = JobTemplate(
            name="flapping",
            job_type="diag.echo",
            is_global=True,
            owner="admin",
            max_attempts=policy.max_attempts,
            retry_policy=policy.stored(),
        )
        session.add(template)
    page = await viewer.get(f"/templates/{template.id}")
    assert page.status_code == 200
    assert "at most 4 · retried when failed, lost · after 5.0 s × 2.0 per attempt" in page.text
