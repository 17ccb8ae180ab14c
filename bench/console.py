"""Console pages with 100,000 runs in the database: each page's first render, next to
``GET /healthz`` on the same server.

Called by the API bench on its ``opsjobs api`` child (which serves the console too). A
page's first request pays for compiling its templates; later ones show the steady cost.
"""

from __future__ import annotations

import statistics
import time

import httpx

from bench.load import LoadClient, Measured, measure

FIRST_RENDER_TARGET_MS = 200.0
REPEATS = 20


async def _fixtures(url: str, token: str) -> dict[str, int]:
    """A template and a schedule to show, and the newest run's id."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        template = await http.post(
            "/api/job-templates",
            json={"name": "bench: progress", "job_type": "diag.progress", "is_global": True},
        )
        template.raise_for_status()
        template_id = template.json()["id"]
        schedule = await http.post(
            "/api/job-schedules",
            json={
                "job_identifier": "bench: hourly",
                "template_id": template_id,
                "schedule_type": "hourly",
                "timezone": "Europe/Berlin",
            },
        )
        schedule.raise_for_status()
        runs = await http.get("/api/job-runs?page_size=1")
        runs.raise_for_status()
    return {
        "template": template_id,
        "schedule": schedule.json()["id"],
        "run": runs.json()["items"][0]["id"],
    }


async def _session_cookie(url: str, token: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        form = await http.get("/sign-in")
        csrf = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        answer = await http.post("/sign-in", data={"token": token, "csrf_token": csrf})
        assert answer.status_code == 303, answer.text
        return f"opsjobs_session={http.cookies['opsjobs_session']}"


def _request(url: str, cookie: str, path: str) -> bytes:
    host = url.removeprefix("http://")
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nAccept: text/html\r\n\r\n"
    ).encode()


async def measure_pages(url: str, token: str) -> tuple[list[tuple[str, str]], bool]:
    """Rows for the report (baseline first) and whether every first render met the target."""
    ids = await _fixtures(url, token)
    cookie = await _session_cookie(url, token)
    pages = [
        "/runs",
        f"/runs/{ids['run']}",
        "/templates",
        f"/templates/{ids['template']}",
        "/schedules",
        f"/schedules/{ids['schedule']}",
        "/schedules/new",
        "/health",
        "/backups",
        "/admin/tokens",
        "/admin/credentials",
        "/admin/audit",
    ]
    health: Measured = await measure(url, token, "GET", "/healthz", requests=200, concurrency=1)
    rows = [("baseline GET /healthz x1", f"p50 {health.p50_ms:6.2f} ms")]
    met = True
    client = await LoadClient.connect(url)
    try:
        for path in pages:
            request = _request(url, cookie, path)
            timings = []
            for _ in range(REPEATS + 1):
                started = time.perf_counter()
                status, body = await client.send(request)
                timings.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
            first, rest = timings[0], timings[1:]
            met = met and first < FIRST_RENDER_TARGET_MS
            rows.append(
                (
                    f"GET {path}",
                    f"first {first:7.2f} ms   then p50 {statistics.median(rest):6.2f} ms",
                )
            )
    finally:
        client.close()
    rows.append(("target", f"every page's first render < {FIRST_RENDER_TARGET_MS:.0f} ms"))
    return rows, met
