"""One ``opsjobs up`` stack and one headless Chromium for the console's browser tests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncEngine

from service.api.app import create_app
from service.console.app import install_console
from service.settings import Settings
from tests.conftest import free_port
from tests.console.stack import REPO, Stack, opsjobs_up

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The tests write a screenshot of each page here (``make screenshots`` points it at
# docs/screenshots, which the README shows).
SCREENSHOTS = Path(os.environ.get("OPSJOBS_SCREENSHOT_DIR", REPO / "var" / "screenshots"))
VIEWPORT = {"width": 1280, "height": 800}
# Generous for a loaded machine: a page waits for a run's end through its event stream.
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with opsjobs_up(tmp_path_factory.mktemp("console-stack")) as running:
        yield running


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture(scope="module")
def requested() -> list[str]:
    """Every URL any page of any context asked for."""
    return []


async def signed_in(
    browser: Browser,
    stack: Stack,
    token: str,
    requested: list[str],
    *,
    color_scheme: str = "light",
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(
        viewport=VIEWPORT,
        color_scheme=color_scheme,  # type: ignore[arg-type]
        base_url=stack.url,
    )
    context.set_default_timeout(WAIT_MS)
    context.on("request", lambda request: requested.append(request.url))
    page = await context.new_page()
    await page.goto("/sign-in")
    await page.get_by_label("API token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/runs")
    return context, page


@pytest.fixture(scope="module")
async def admin(browser: Browser, stack: Stack, requested: list[str]) -> AsyncIterator[Page]:
    context, page = await signed_in(browser, stack, stack.admin_token, requested)
    yield page
    await context.close()


def hosts(urls: list[str]) -> set[str]:
    # data: and blob: URLs are the page's own bytes, never a request to a host.
    return {urlsplit(url).hostname or url for url in urls if not url.startswith(("data:", "blob:"))}


@pytest.fixture(scope="module")
async def console_url(settings: Settings, engine: AsyncEngine) -> AsyncIterator[str]:
    """The API with the console, served by uvicorn in this process on a free port."""
    port = free_port()
    config = uvicorn.Config(
        install_console(create_app(settings)),
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
