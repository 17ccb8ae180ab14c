"""Follow a run through the API's event stream until it ends; its exit code.

``GET /api/job-runs/{id}/events`` with ``Last-Event-ID: 0-0`` replays the run's events
from the start and then follows them live; a dropped stream is reopened after the last
event seen. On a terminal a progress bar shows per-target counts; otherwise each event
is one line on stderr.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from service.client.errors import CliError, ExitCode
from service.client.http import Api, unreachable
from service.client.output import Printer, console

START = "0-0"
TERMINAL = frozenset({"completed", "failed", "cancelled", "skipped", "deleted"})
OUTCOME_RANK = {"ok": 0, "unknown": 0, "warning": 1, "critical": 2}
FAIL_ON = ("warning", "critical")
RECONNECT_DELAY_S = 1.0
MAX_RECONNECTS = 30


@dataclass
class Event:
    type: str
    data: dict[str, Any]
    id: str | None = None


def parse_events(lines: Iterator[str]) -> Iterator[Event]:
    """Server-Sent Events from a stream of lines (comments are keep-alives)."""
    kind, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                try:
                    payload = json.loads("\n".join(data))
                except json.JSONDecodeError:
                    payload = {"value": "\n".join(data)}
                yield Event(
                    kind, payload if isinstance(payload, dict) else {"value": payload}, event_id
                )
            kind, data, event_id = "message", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value


def exit_code(status: str, outcome: str | None, fail_on: str | None) -> int:
    """0 for a completed run, 1 for any other end or an outcome at or above ``fail_on``."""
    if status != "completed":
        return ExitCode.FAILED
    if fail_on and OUTCOME_RANK.get(outcome or "", 0) >= OUTCOME_RANK[fail_on]:
        return ExitCode.FAILED
    return ExitCode.OK


@dataclass
class Tally:
    """What the watcher knows of the run so far."""

    total: int | None = None
    current: int = 0
    message: str = ""
    targets: Counter[str] = field(default_factory=Counter)
    status: str = "pending"

    def apply(self, event: Event) -> None:
        data = event.data
        if event.type == "progress":
            self.current = int(data.get("current") or 0)
            if data.get("total") is not None:
                self.total = int(data["total"])
            self.message = str(data.get("message") or "")
        elif event.type == "target_started":
            self.targets["running"] += 1
        elif event.type == "target_finished":
            if self.targets["running"] > 0:
                self.targets["running"] -= 1
            self.targets[str(data.get("status") or "finished")] += 1
        elif event.type == "state":
            self.status = str(data.get("status") or self.status)

    def counts(self) -> str:
        shown = [f"{name} {count}" for name, count in sorted(self.targets.items()) if count]
        return ", ".join(shown)


def describe(event: Event) -> str:
    data = event.data
    if event.type == "progress":
        done = (
            f"{data.get('current')}/{data.get('total')}"
            if data.get("total")
            else data.get("current")
        )
        return f"progress {done} {data.get('message') or ''}".rstrip()
    if event.type == "state":
        parts = [f"state {data.get('status')}"]
        if data.get("outcome"):
            parts.append(f"({data['outcome']})")
        if data.get("summary"):
            parts.append(str(data["summary"]))
        return " ".join(parts)
    if event.type == "log":
        target = f" [{data['target']}]" if data.get("target") else ""
        return f"log {data.get('level', 'info')}{target}: {data.get('message', '')}"
    if event.type in ("target_started", "target_finished"):
        extra = ""
        if event.type == "target_finished":
            extra = f" {data.get('status')}"
            if data.get("outcome"):
                extra += f" ({data['outcome']})"
            if data.get("error"):
                extra += f": {data['error']}"
        return f"{event.type} {data.get('key')}{extra}"
    return f"{event.type} {json.dumps(data, default=str)}"


def _events(api: Api, run_id: int) -> Iterator[Event]:
    """Every event of the run until its terminal state, reopening a dropped stream after
    the last event seen (at most ``MAX_RECONNECTS`` times in a row without an event)."""
    last_id = START
    failures = 0
    while True:
        try:
            with api.stream(
                f"/api/job-runs/{run_id}/events", headers={"Last-Event-ID": last_id}
            ) as answer:
                for event in parse_events(answer.iter_lines()):
                    failures = 0
                    if event.id:
                        last_id = event.id
                    yield event
                    if event.type == "state" and event.data.get("status") in TERMINAL:
                        return
        except httpx.TransportError as exc:
            if failures >= MAX_RECONNECTS:
                raise unreachable(api.url, exc) from None
        if failures >= MAX_RECONNECTS:
            raise CliError(
                f"the event stream of run {run_id} keeps closing before the run ends",
                ExitCode.UNREACHABLE,
            )
        failures += 1
        time.sleep(RECONNECT_DELAY_S)


def watch_run(api: Api, printer: Printer, run_id: int, *, fail_on: str | None) -> int:
    """Follow the run to its end, print how it ended; its exit code."""
    run = api.get(f"/api/job-runs/{run_id}", {"targets_page_size": 1})
    tally = Tally(total=sum(run.get("target_counts", {}).values()) or None)
    final: Event | None = None
    interactive = sys.stderr.isatty()
    if interactive:
        with Progress(
            TextColumn("run {task.fields[run]} [bold]{task.fields[status]}[/]"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[message]}"),
            console=console(sys.stderr),
            transient=False,
        ) as bar:
            task = bar.add_task(
                "run", total=tally.total, run=run_id, status=run["status"], counts="", message=""
            )
            for event in _events(api, run_id):
                tally.apply(event)
                final = event if event.type == "state" else final
                bar.update(
                    task,
                    total=tally.total,
                    completed=tally.current,
                    status=tally.status,
                    counts=tally.counts(),
                    message=tally.message[:60],
                )
    else:
        for event in _events(api, run_id):
            tally.apply(event)
            final = event if event.type == "state" else final
            print(f"run {run_id} {describe(event)}", file=sys.stderr, flush=True)
    status = str(final.data.get("status")) if final else tally.status
    if status == "deleted":
        raise CliError(f"run {run_id} was deleted while it was watched", ExitCode.FAILED)
    run = api.get(f"/api/job-runs/{run_id}")
    code = exit_code(run["status"], run.get("outcome"), fail_on)
    if printer.format == "json":
        printer.json(run)
    else:
        outcome = f" ({run['outcome']})" if run.get("outcome") else ""
        detail = run.get("summary") or run.get("error") or ""
        printer.line(f"run {run_id} {run['status']}{outcome}: {detail}".rstrip(": "))
        counts = ", ".join(f"{k} {v}" for k, v in sorted(run.get("target_counts", {}).items()))
        if counts:
            printer.line(f"targets: {counts}")
    return code
