"""The README's walkthrough, copied as written (its ```` ```bash walkthrough ```` blocks),
against a fresh ``opsjobs up`` with the lab on ports other than the defaults."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from tests.console.stack import REPO, Stack, opsjobs_up

WALKTHROUGH = re.compile(r"^```bash walkthrough\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# The walkthrough's run: 8 lab devices, one command each.
WALKTHROUGH_TIMEOUT_S = 120
DEFAULT_PORTS = {8000, 8081, 8082, 8083, 8025}
PORT_SETTINGS = (
    "API__PORT",
    "LAB__NIFI_PORT",
    "LAB__NAUTOBOT_PORT",
    "LAB__ALERTS_PORT",
    "LAB__SMTP_PORT",
)


def walkthrough() -> str:
    blocks = WALKTHROUGH.findall((REPO / "README.md").read_text())
    assert blocks, "README.md has no ```bash walkthrough block"
    return "\n".join(blocks)


async def wait_for_template(stack: Stack, name: str) -> None:
    """The lab seeds its templates once it is up; a reader waits for its log line."""
    async with stack.api() as http, asyncio.timeout(60):
        while True:
            answer = await http.get("/api/job-templates")
            if any(item["name"] == name for item in answer.json()["items"]):
                return
            await asyncio.sleep(0.2)


def sse_events(text: str) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


async def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    script = walkthrough()
    assert "8000" not in script.replace("${OPSJOBS_API__PORT:-8000}", "")
    async with opsjobs_up(tmp_path, database="readme") as stack:
        assert not {int(stack.env[f"OPSJOBS_{key}"]) for key in PORT_SETTINGS} & DEFAULT_PORTS
        await wait_for_template(stack, "lab: show version")
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-euo",
            "pipefail",
            "-c",
            script,
            cwd=REPO,
            # The walkthrough's `opsjobs login` writes its file here, not in the real home.
            env={**stack.env, "XDG_CONFIG_HOME": str(tmp_path / "config")},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), WALKTHROUGH_TIMEOUT_S)
        output = out.decode()
        assert process.returncode == 0, f"{output}\n{err.decode()}"
        async with stack.api() as http:
            runs = (await http.get("/api/job-runs")).json()["items"]
            schedules = (await http.get("/api/job-schedules")).json()["items"]

    events = sse_events(output)
    kinds = [kind for kind, _ in events]
    # The stream showed the run's progress, not only its end.
    assert kinds.count("progress") >= 8
    assert kinds.count("target_finished") == 8
    final_kind, final_data = events[-1]
    assert (final_kind, final_data["status"]) == ("state", "completed")
    walked = next(run for run in runs if run["job_name"] == "lab: show version")
    assert (walked["status"], walked["triggered_by"]) == ("completed", "manual")
    assert '"status": "completed"' in output
    assert any(item["job_identifier"] == "show version daily" for item in schedules)


def test_the_walkthrough_reads_its_port_from_the_settings() -> None:
    """Copied on a machine where 8000 is taken, with OPSJOBS_API__PORT set as the README
    says, every call goes to that port."""
    script = walkthrough()
    assert script.splitlines()[0] == "API=http://127.0.0.1:${OPSJOBS_API__PORT:-8000}"
    assert "localhost:" not in script
    assert "$RUN" in script
    assert "/job-runs/2" not in script
