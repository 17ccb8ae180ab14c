"""The console in headless Chromium against ``opsjobs up`` with the lab.

Runs are started from their pages and watched to their end without a reload; a viewer
sees no action at all, forged POSTs change nothing, and no page asks anything of a host
other than 127.0.0.1.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Dialog, Page, expect

from tests.console.conftest import SCREENSHOTS, VIEWPORT, hosts, signed_in
from tests.console.stack import Stack

pytestmark = pytest.mark.timeout(120)

RUN_PAGE = re.compile(r".*/runs/\d+$")
# Records every value the run page's progress bar takes, from the first event on.
RECORD_PROGRESS = """
window.__progress = [];
document.addEventListener("DOMContentLoaded", () => {
  const bar = document.getElementById("run-progress");
  if (!bar) return;
  new MutationObserver(() => window.__progress.push(Number(bar.getAttribute("aria-valuenow"))))
    .observe(bar, {attributes: true, attributeFilter: ["aria-valuenow"]});
});
"""
ACTION_BUTTONS = re.compile(
    r"^(Cancel|Retry|Retry failed targets|Run now|Activate|Deactivate|Create schedule|"
    r"Save schedule|Create token|Revoke|Save credential)$"
)


async def api_get(stack: Stack, path: str, token: str | None = None) -> Any:
    async with stack.api(token) as http:
        answer = await http.get(path)
        assert answer.status_code == 200, answer.text
        return answer.json()


async def api_post(stack: Stack, path: str, body: dict[str, Any]) -> Any:
    async with stack.api() as http:
        answer = await http.post(path, json=body)
        assert answer.status_code in (201, 202), answer.text
        return answer.json()


async def template_id(stack: Stack, name: str) -> int:
    templates = await api_get(stack, "/api/job-templates?page_size=100")
    return next(item["id"] for item in templates["items"] if item["name"] == name)


async def hold_queue(stack: Stack, queue: str) -> None:
    """Keep the queue's worker (one job at a time) busy for a moment, so the next run is
    still pending when its page opens and the page sees all of its life."""
    await api_post(
        stack,
        "/api/job-runs",
        {"job_type": "diag.progress", "parameters": {"steps": 3, "delay": 0.7}, "queue": queue},
    )


async def run_from_template_page(page: Page, template_name: str) -> int:
    await page.goto("/templates")
    await page.get_by_role("link", name=template_name).click()
    await page.get_by_role("button", name="Run now").click()
    await page.wait_for_url(RUN_PAGE)
    return int(page.url.rsplit("/", 1)[1])


async def watch_to_the_end(page: Page, status: str) -> list[float]:
    """Wait for the final status without reloading; the progress values the bar took."""
    marker = await page.evaluate("window.__marker = Math.random()")
    await expect(page.locator("#run-status")).to_have_text(status)
    assert await page.evaluate("window.__marker") == marker, "the page was reloaded"
    values: list[float] = await page.evaluate("window.__progress")
    return values


async def test_queue_check_started_from_its_page_is_watched_to_its_end(
    stack: Stack, admin: Page
) -> None:
    await admin.context.add_init_script(RECORD_PROGRESS)
    await hold_queue(stack, "default")
    run_id = await run_from_template_page(admin, "lab: queue backlog")
    values = await watch_to_the_end(admin, "completed")
    assert len(set(values)) >= 2, values  # the bar moved
    assert values[-1] == 100
    await expect(admin.locator("#run-outcome")).to_have_text("critical")
    await admin.get_by_text("Connections of lab-west").click()
    await expect(admin.locator("details[open] .badge.colour-red").first).to_be_visible()
    run = await api_get(stack, f"/api/job-runs/{run_id}")
    assert run["status"] == "completed"


async def test_backup_started_from_its_page_shows_its_diffs(stack: Stack, admin: Page) -> None:
    await hold_queue(stack, "devices")
    await run_from_template_page(admin, "lab: config backup")
    values = await watch_to_the_end(admin, "completed")
    assert len(set(values)) >= 2, values
    await admin.locator("summary", has_text="Diff of").first.click()
    diff = admin.locator("details[open] pre.diff").first
    await expect(diff).to_be_visible()
    await expect(diff.locator(".add").first).to_be_visible()
    await admin.goto("/backups")
    await admin.locator("table a").first.click()
    await expect(admin.get_by_role("heading", name="Running configuration")).to_be_visible()
    await admin.get_by_role("button", name="Show diff").first.click()
    await expect(admin.get_by_role("heading", name=re.compile("^Diff "))).to_be_visible()
    await expect(admin.get_by_role("cell", name="changed", exact=True).first).to_be_visible()


async def test_a_refused_parameter_is_shown_next_to_its_field_and_queues_nothing(
    stack: Stack, admin: Page
) -> None:
    template = await api_post(
        stack,
        "/api/job-templates",
        {
            "name": "console: progress",
            "job_type": "diag.progress",
            "is_global": True,
            "config": {"steps": 60, "delay": 0.25},
        },
    )
    await admin.goto(f"/templates/{template['id']}")
    steps = admin.get_by_label("Steps")
    for typed, message in (("0", "greater than or equal to 1"), ("many", "whole number")):
        await steps.fill(typed)
        async with admin.expect_response(f"**/templates/{template['id']}/run") as answer:
            await admin.get_by_role("button", name="Run now").click()
        assert (await answer.value).status == 422
        await expect(admin.locator("#param-steps-error")).to_contain_text(message)
        await expect(admin.get_by_label("Steps")).to_have_attribute("aria-invalid", "true")
    runs = await api_get(stack, f"/api/job-runs?template_id={template['id']}")
    assert runs["total"] == 0


async def test_cancelled_progress_run_keeps_its_partial_progress(stack: Stack, admin: Page) -> None:
    await admin.goto("/templates")
    await admin.get_by_role("link", name="console: progress").click()
    await admin.get_by_label("Steps").fill("60")
    await admin.get_by_role("button", name="Run now").click()
    await admin.wait_for_url(RUN_PAGE)
    run_id = int(admin.url.rsplit("/", 1)[1])
    bar = admin.get_by_role("progressbar", name="Run progress")
    # At least 5 % done (CSP forbids evaluating strings, so the value is matched instead).
    await expect(bar).to_have_attribute("aria-valuenow", re.compile(r"^([5-9]|[1-9]\d)(\.\d+)?$"))

    async def accept(dialog: Dialog) -> None:
        assert dialog.message == f"Cancel run #{run_id}?"
        await dialog.accept()

    admin.once("dialog", accept)
    async with admin.expect_navigation():  # the form posts, then comes back to this page
        await admin.get_by_role("button", name="Cancel").click()
    await expect(admin.locator("#run-status")).to_have_text("cancelled")
    run = await api_get(stack, f"/api/job-runs/{run_id}")
    assert run["status"] == "cancelled"
    assert run["reason"] == "cancelled while running"
    partial = run["progress"]["percent"]
    assert 5 <= partial < 100
    await expect(bar).to_have_attribute("aria-valuenow", format(partial, "g"))


async def test_retry_failed_targets_retries_only_those(stack: Stack, admin: Page) -> None:
    credentials = await api_get(stack, "/api/credentials")
    credential = next(c["id"] for c in credentials["items"] if c["name"] == "lab-devices")
    commands = await api_post(
        stack,
        "/api/command-templates",
        {
            "name": "console: half fail",
            "is_global": True,
            # Devices whose name ends in 1 or 3 name an undefined variable: they fail.
            "content": 'show version{% if device.name[-1] in "13" %} {{ undefined }}{% endif %}',
        },
    )
    await api_post(
        stack,
        "/api/job-templates",
        {
            "name": "console: half fail",
            "job_type": "run_commands",
            "is_global": True,
            "config": {
                "targets": {"all": True},
                "command_template_id": commands["id"],
                "credential_id": credential,
            },
        },
    )
    first = await run_from_template_page(admin, "console: half fail")
    await expect(admin.locator("#run-status")).to_have_text("completed")
    await admin.locator("summary", has_text="Output of").first.click()
    await expect(admin.locator("details[open] pre").first).to_contain_text("Hostname")
    await admin.get_by_role("button", name="Retry failed targets").click()
    await admin.wait_for_url(RUN_PAGE)
    retry = int(admin.url.rsplit("/", 1)[1])
    assert retry != first
    await expect(admin.locator("#run-status")).to_have_text(re.compile("completed|failed"))
    original = await api_get(stack, f"/api/job-runs/{first}")
    again = await api_get(stack, f"/api/job-runs/{retry}")
    failed = {t["name"] for t in original["target_rows"]["items"] if t["status"] == "failed"}
    assert failed
    assert again["retry_of_id"] == first
    assert {t["name"] for t in again["target_rows"]["items"]} == failed


def _next_dst_change(zone: ZoneInfo, today: date) -> date:
    day = today
    while True:
        start = datetime.combine(day, time(0), tzinfo=zone)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        if start.utcoffset() != end.utcoffset():
            return day
        day += timedelta(days=1)


async def test_new_schedule_previews_its_fires_with_dst_days(admin: Page) -> None:
    zone = ZoneInfo("Europe/Berlin")
    change = _next_dst_change(zone, datetime.now(UTC).date() + timedelta(days=1))
    start = datetime.combine(change - timedelta(days=3), time(0), tzinfo=UTC)
    await admin.goto("/schedules")
    await admin.get_by_role("link", name="New schedule").click()
    await admin.get_by_label("Name").fill("console: daily check")
    await admin.get_by_label("Template").select_option(label="lab: queue backlog")
    await admin.get_by_label("Schedule type").select_option("daily")
    await admin.get_by_label("Time of day (HH:MM)").fill("06:00")
    await admin.get_by_label("Time zone (IANA)").fill("Europe/Berlin")
    await admin.get_by_label("Starts at (ISO 8601, optional)").fill(start.isoformat())
    preview = admin.locator("#preview")
    await expect(preview).to_contain_text(f"{change:%Y-%m-%d} 06:00")
    await expect(preview.get_by_text("DST day")).to_have_count(1)
    await admin.get_by_label("Time zone (IANA)").fill("Mars/Olympus")
    await expect(preview.get_by_role("alert")).to_contain_text("timezone")
    await admin.get_by_label("Time zone (IANA)").fill("Europe/Berlin")
    await admin.get_by_role("button", name="Create schedule").click()
    await admin.wait_for_url(re.compile(r".*/schedules/\d+$"))
    await expect(admin.get_by_role("heading", name="Next 20 fires")).to_be_visible()
    await expect(admin.get_by_text("DST day")).to_have_count(1)
    await expect(admin.get_by_role("cell", name=re.compile(r"06:00 CE"))).to_have_count(20)


async def test_a_viewer_sees_no_action_and_forged_posts_change_nothing(
    stack: Stack, browser: Browser, admin: Page, requested: list[str]
) -> None:
    viewer_token = (await api_post(stack, "/api/tokens", {"name": "vera", "role": "viewer"}))[
        "token"
    ]
    context, viewer = await signed_in(browser, stack, viewer_token, requested)
    runs = await api_get(stack, "/api/job-runs?page_size=1")
    run_id = runs["items"][0]["id"]
    template = await template_id(stack, "console: progress")
    schedules = await api_get(stack, "/api/job-schedules")
    schedule = schedules["items"][0]["id"]
    for path in (
        "/runs",
        f"/runs/{run_id}",
        "/templates",
        f"/templates/{template}",
        "/schedules",
        f"/schedules/{schedule}",
        "/health",
        "/backups",
    ):
        await viewer.goto(path)
        # The only form that posts is signing out; no action button exists at all.
        await expect(viewer.locator("form[method=post]")).to_have_count(1)
        await expect(viewer.get_by_role("button", name=ACTION_BUTTONS)).to_have_count(0)
    csrf = await viewer.locator("form[action='/sign-out'] input[name=csrf_token]").get_attribute(
        "value"
    )
    assert (await viewer.goto("/admin/tokens")).status == 403  # type: ignore[union-attr]

    before = (await api_get(stack, "/api/job-runs"))["total"]
    as_viewer = await context.request.post(
        f"/templates/{template}/run", form={"csrf_token": csrf or "", "param.steps": "1"}
    )
    assert as_viewer.status == 403
    without_csrf = await admin.context.request.post(
        f"/templates/{template}/run", form={"param.steps": "1"}
    )
    assert without_csrf.status == 403
    wrong_csrf = await admin.context.request.post(
        f"/runs/{run_id}/retry", form={"csrf_token": csrf or ""}
    )
    assert wrong_csrf.status == 403
    assert (await api_get(stack, "/api/job-runs"))["total"] == before
    await context.close()


PAGES = (
    ("runs", "/runs"),
    ("run", "/runs/{run}"),
    ("templates", "/templates"),
    ("template", "/templates/{template}"),
    ("schedules", "/schedules"),
    ("schedule", "/schedules/{schedule}"),
    ("schedule-new", "/schedules/new"),
    ("health", "/health"),
    ("backups", "/backups"),
    ("backup", "/backups/{device}"),
    ("admin-tokens", "/admin/tokens"),
    ("admin-credentials", "/admin/credentials"),
    ("admin-audit", "/admin/audit"),
)


async def test_every_page_in_light_and_dark_and_the_api_docs_offline(
    stack: Stack, browser: Browser, admin: Page, requested: list[str]
) -> None:
    backup_runs = await api_get(stack, "/api/job-runs?job_type=backup&status=completed")
    backup = await api_get(stack, f"/api/job-runs/{backup_runs['items'][0]['id']}")
    ids = {
        "run": backup["id"],
        "template": backup["template_id"],
        "schedule": (await api_get(stack, "/api/job-schedules"))["items"][0]["id"],
        "device": backup["target_rows"]["items"][0]["key"],
    }
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    dark_context, dark = await signed_in(
        browser, stack, stack.admin_token, requested, color_scheme="dark"
    )
    for scheme, page in (("light", admin), ("dark", dark)):
        for name, path in PAGES:
            answer = await page.goto(path.format(**ids))
            assert answer is not None
            assert answer.status == 200, path
            await page.screenshot(path=SCREENSHOTS / f"{name}-{scheme}.png")
        anonymous = await browser.new_context(
            color_scheme=scheme, viewport=VIEWPORT, base_url=stack.url
        )
        anonymous.on("request", lambda request: requested.append(request.url))
        signing_in = await anonymous.new_page()
        await signing_in.goto("/sign-in")
        await signing_in.screenshot(path=SCREENSHOTS / f"sign-in-{scheme}.png")
        await anonymous.close()
    await dark_context.close()
    await admin.set_viewport_size({"width": 390, "height": 844})  # a phone
    await admin.goto(f"/runs/{ids['run']}")
    await admin.screenshot(path=SCREENSHOTS / "run-narrow-light.png")
    await admin.set_viewport_size(VIEWPORT)
    await admin.goto("/docs")
    await expect(admin.locator(".swagger-ui .info .title")).to_contain_text("opsjobs")
    await admin.goto("/redoc")
    await expect(admin.get_by_role("heading", name=re.compile("^opsjobs"))).to_be_visible()


def test_no_page_asked_anything_of_another_host(requested: list[str]) -> None:
    assert requested
    assert hosts(requested) == {"127.0.0.1"}
