"""Console sign-in, sessions and CSRF over HTTP (no browser): what the cookie carries,
where a sign-in may lead, and that a refused POST changes nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, update

from executors.services import Services
from service.access.tokens import hash_token
from service.db.models import JobRun, RunStatus, TriggeredBy
from service.db.security_models import ApiToken, Role
from service.runs import lifecycle
from service.runs.lifecycle import RunRequest
from tests.conftest import token_for

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def sign_in(http: httpx.AsyncClient, token: str, next_path: str = "/runs") -> httpx.Response:
    form = await http.get("/sign-in")
    secret = CSRF.search(form.text)
    assert secret is not None
    return await http.post(
        "/sign-in", data={"token": token, "csrf_token": secret.group(1), "next": next_path}
    )


@pytest.fixture
async def browser_like(console_url: str, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=console_url, timeout=10) as http:
        yield http


async def test_the_session_cookie_is_strict_and_http_only_and_holds_no_token(
    browser_like: httpx.AsyncClient, services: Services
) -> None:
    token = await token_for(services, Role.OPERATOR, "olga")
    answer = await sign_in(browser_like, token)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/runs"
    cookie = next(
        value
        for value in answer.headers.get_list("set-cookie")
        if value.startswith("opsjobs_session=")
    )
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert "secure" not in attributes  # plain HTTP here; HTTPS adds Secure
    assert token not in cookie
    stored = [
        await services.redis.get(key)
        for key in await services.redis.keys(f"{services.keyspace.prefix}console:*")
    ]
    assert len(stored) == 1
    assert token.encode() not in stored[0]
    assert hash_token(token).encode() in stored[0]
    page = await browser_like.get("/runs")
    assert page.status_code == 200
    assert token not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in page.headers["content-security-policy"]


@pytest.mark.parametrize(
    "next_path", ["//elsewhere.example/x", "https://elsewhere.example/", "runs", "/\\elsewhere"]
)
async def test_a_sign_in_only_leads_to_a_page_of_this_site(
    browser_like: httpx.AsyncClient, services: Services, next_path: str
) -> None:
    answer = await sign_in(browser_like, await token_for(services, Role.VIEWER, "vic"), next_path)
    assert answer.headers["location"] == "/runs"


async def test_a_sign_in_needs_the_form_it_came_from_and_a_valid_token(
    browser_like: httpx.AsyncClient, services: Services
) -> None:
    token = await token_for(services, Role.VIEWER, "vic")
    forged = await browser_like.post("/sign-in", data={"token": token, "csrf_token": "guess"})
    assert forged.status_code == 403
    wrong = await sign_in(browser_like, "ojt_not-a-token")
    assert wrong.status_code == 401
    assert "not valid" in wrong.text
    assert "opsjobs_session" not in browser_like.cookies


async def test_pages_without_a_session_lead_to_the_sign_in(
    browser_like: httpx.AsyncClient,
) -> None:
    answer = await browser_like.get("/runs?status=failed")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=%2Fruns%3Fstatus%3Dfailed"
    assert (await browser_like.get("/runs/live?ids=1")).status_code == 303


async def test_signing_out_or_revoking_the_token_ends_the_session(
    browser_like: httpx.AsyncClient, services: Services
) -> None:
    admin = await token_for(services, Role.ADMIN, "ada")
    await sign_in(browser_like, admin)
    page = await browser_like.get("/admin/tokens")
    assert page.status_code == 200
    csrf = CSRF.search(page.text)
    assert csrf is not None
    out = await browser_like.post("/sign-out", data={"csrf_token": csrf.group(1)})
    assert out.status_code == 303
    assert (await browser_like.get("/runs")).status_code == 303

    operator = await token_for(services, Role.OPERATOR, "olga")
    await sign_in(browser_like, operator)
    assert (await browser_like.get("/runs")).status_code == 200
    async with services.sessions.begin() as session:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == hash_token(operator))
            .values(revoked_at=func.now())
        )
    assert (await browser_like.get("/runs")).status_code == 303
    assert await services.redis.keys(f"{services.keyspace.prefix}console:*") == []


async def test_a_cancel_without_csrf_or_by_a_viewer_is_refused_and_changes_nothing(
    console_url: str, services: Services
) -> None:
    [run_id] = await lifecycle.enqueue_runs(
        services.sessions,
        services.redis,
        [
            RunRequest(
                job_type="diag.echo",
                job_name="waiting",
                queue=services.settings.queues.default,
                parameters={},
                triggered_by=TriggeredBy.API,
            )
        ],
    )

    async def status() -> str:
        async with services.sessions() as session:
            run = await session.get_one(JobRun, run_id)
            return run.status

    async with (
        httpx.AsyncClient(base_url=console_url, timeout=10) as viewer,
        httpx.AsyncClient(base_url=console_url, timeout=10) as operator,
    ):
        await sign_in(viewer, await token_for(services, Role.VIEWER, "vic"))
        await sign_in(operator, await token_for(services, Role.OPERATOR, "olga"))
        viewer_page = await viewer.get(f"/runs/{run_id}")
        assert "Cancel" not in viewer_page.text  # no action at all for a viewer
        viewer_csrf = CSRF.search(viewer_page.text)
        operator_page = await operator.get(f"/runs/{run_id}")
        operator_csrf = CSRF.search(operator_page.text)
        assert viewer_csrf is not None
        assert operator_csrf is not None
        cancel = f"/runs/{run_id}/cancel"

        assert (await operator.post(cancel)).status_code == 403
        assert (await operator.post(cancel, data={"csrf_token": "x"})).status_code == 403
        assert (
            await operator.post(cancel, data={"csrf_token": viewer_csrf.group(1)})
        ).status_code == 403
        assert (
            await viewer.post(cancel, data={"csrf_token": viewer_csrf.group(1)})
        ).status_code == 403
        assert await status() == RunStatus.PENDING.value

        done = await operator.post(cancel, data={"csrf_token": operator_csrf.group(1)})
        assert done.status_code == 303
        assert await status() == RunStatus.CANCELLED.value


async def test_the_runs_page_filters_retries(console_url: str, services: Services) -> None:
    requests = [
        RunRequest(
            job_type="diag.echo",
            job_name=name,
            queue=services.settings.queues.default,
            parameters={},
            triggered_by=trigger,
        )
        for name, trigger in (("first-try", TriggeredBy.API), ("second-try", TriggeredBy.RETRY))
    ]
    await lifecycle.enqueue_runs(services.sessions, services.redis, requests)
    async with httpx.AsyncClient(base_url=console_url, timeout=10) as http:
        await sign_in(http, await token_for(services, Role.VIEWER, "vic"))
        page = await http.get("/runs", params={"triggered_by": "retry"})
    assert page.status_code == 200
    assert "<option selected>retry</option>" in page.text
    assert "second-try" in page.text
    assert "first-try" not in page.text
