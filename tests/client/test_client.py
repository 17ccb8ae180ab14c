"""``opsjobs`` as an API client, driven as a subprocess against a running service."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import pty
import re
import stat
from pathlib import Path
from typing import Any

from tests.client.conftest import CliStack, Result
from tests.conftest import free_port

ANSI = "\x1b["


def one_line(result: Result) -> str:
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    return lines[0]


async def api_json(cli: CliStack, path: str, user: str = "admin", **params: Any) -> Any:
    async with cli.api(user) as http:
        answer = await http.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def finished_run(
    cli: CliStack, job_type: str, *params: str, user: str = "alice"
) -> dict[str, Any]:
    result = await cli.opsjobs("run", job_type, *params, "-o", "json", user=user)
    assert result.code in (0, 1), result.err
    run: dict[str, Any] = json.loads(result.out)
    return run


# ------------------------------------------------------------------ help and logging


async def test_help_lists_client_and_server_verbs_for_operators(cli: CliStack) -> None:
    result = await cli.opsjobs("--help", user=None)
    assert result.code == 0
    _, _, verbs = result.out.partition("\nclient verbs (")
    client, _, server = verbs.partition("\nserver verbs (")
    assert server
    for verb in ("login", "runs", "templates", "schedules", "queues", "workers", "audit"):
        assert f"\n  {verb} " in client
    for verb in ("api", "worker", "up", "migrate", "lab", "token", "keys"):
        assert f"\n  {verb} " in server
    assert "event loop" not in result.out


# ------------------------------------------------------------------ login


async def test_login_saves_an_owner_only_file_that_later_verbs_use(
    cli: CliStack, home: Path
) -> None:
    env = {"XDG_CONFIG_HOME": str(home)}
    result = await cli.opsjobs(
        "login", "--url", cli.url + "/", "--token", cli.tokens["alice"], user=None, env=env
    )
    assert result.code == 0, result.err
    path = home / "opsjobs" / "cli.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f'url = "{cli.url}"' in path.read_text()

    listed = await cli.opsjobs("templates", "list", "-o", "json", user=None, env=env)
    assert listed.code == 0, listed.err
    assert json.loads(listed.out) == await api_json(cli, "/api/job-templates", "alice")

    # The environment wins over the file.
    overridden = await cli.opsjobs(
        "queues", user=None, env={**env, "OPSJOBS_TOKEN": "ojt_not-a-token"}
    )
    assert overridden.code == 3

    assert (await cli.opsjobs("logout", user=None, env=env)).code == 0
    assert not path.exists()
    after = await cli.opsjobs("queues", user=None, env=env)
    assert after.code == 3
    assert one_line(after).startswith("opsjobs: not logged in: run opsjobs login")


async def test_login_with_a_bad_token_saves_nothing(cli: CliStack, home: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(home)}
    result = await cli.opsjobs(
        "login", "--url", cli.url, "--token", "ojt_wrong", user=None, env=env
    )
    assert result.code == 3
    assert one_line(result) == (
        f"opsjobs: not authorised by the API at {cli.url}: invalid or revoked token "
        "(set OPSJOBS_TOKEN or run opsjobs login)"
    )
    assert not (home / "opsjobs" / "cli.toml").exists()
    # Without a terminal to ask on, what is left out must be given.
    unasked = await cli.opsjobs("login", "--url", cli.url, user=None, env=env)
    assert unasked.code == 2
    assert one_line(unasked) == "opsjobs: no terminal to ask on: pass --token"


# ------------------------------------------------------------------ exit code 3


async def test_bad_token_exits_3_in_one_line(cli: CliStack) -> None:
    result = await cli.opsjobs("runs", "list", env={"OPSJOBS_TOKEN": "ojt_revoked"})
    assert result.code == 3
    assert "invalid or revoked token" in one_line(result)


async def test_forbidden_exits_3(cli: CliStack) -> None:
    """A viewer may not read the audit log: 403 is "not authorised", exit 3."""
    result = await cli.opsjobs("audit", user="victor")
    assert result.code == 3
    assert one_line(result).startswith(f"opsjobs: not authorised by the API at {cli.url}:")


async def test_unreachable_api_is_one_line_naming_url_and_setting(cli: CliStack) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (("runs", "list"), ("run", "diag.echo"), ("runs", "watch", "1")):
        result = await cli.opsjobs(*args, env={"OPSJOBS_URL": url})
        assert result.code == 3, args
        assert one_line(result) == (
            f"opsjobs: cannot reach the API at {url} (set OPSJOBS_URL or run opsjobs login): "
            "connection refused"
        )


async def test_unknown_host_exits_3(cli: CliStack) -> None:
    result = await cli.opsjobs("queues", env={"OPSJOBS_URL": "http://no-such-host.invalid:8000"})
    assert result.code == 3
    assert one_line(result).startswith(
        "opsjobs: cannot reach the API at http://no-such-host.invalid:8000"
    )


# ------------------------------------------------------------------ run, watch, exit codes


async def test_run_goes_through_the_api_as_the_user_and_is_audited(cli: CliStack) -> None:
    result = await cli.opsjobs(
        "run", "diag.progress", "-p", "steps=3", "-p", "delay=0.05", "-o", "json", user="alice"
    )
    assert result.code == 0, result.err
    run = json.loads(result.out)
    assert (run["status"], run["outcome"]) == ("completed", "ok")
    assert (run["executed_by"], run["triggered_by"]) == ("alice", "api")
    assert run == await api_json(cli, f"/api/job-runs/{run['id']}")
    # Without a terminal, one line per event on stderr; no log lines.
    assert f"run {run['id']} progress 3/3" in result.err
    assert f"run {run['id']} state completed (ok)" in result.err
    assert " INFO " not in result.err
    assert " WARNING " not in result.err
    audit = await api_json(cli, "/api/audit", actor="alice", action="run")
    assert str(run["id"]) in [event["resource_id"] for event in audit["items"]]


async def test_run_with_a_private_resource_belongs_to_its_user(cli: CliStack) -> None:
    """Ownership applies to CLI runs: alice's run with her private credential is hers."""
    async with cli.api("alice") as http:
        answer = await http.post(
            "/api/credentials",
            json={
                "name": "alice-run",
                "type": "ssh_password",
                "username": "a",
                "password": "pw-a-2",
            },
        )
    assert answer.status_code == 201, answer.text
    commands = (await api_json(cli, "/api/command-templates"))["items"][0]["id"]
    result = await cli.opsjobs(
        "run",
        "run_commands",
        "-p",
        'targets={"all": true}',
        "-p",
        f"command_template_id={commands}",
        "-p",
        f"credential_id={answer.json()['id']}",
        "--no-wait",
        "-o",
        "json",
        user="alice",
    )
    assert result.code == 0, result.err
    run = json.loads(result.out)
    assert (run["private_to"], run["executed_by"]) == ("alice", "alice")
    hidden = await cli.opsjobs("runs", "show", str(run["id"]), user="bob")
    assert hidden.code == 2
    assert one_line(hidden) == f"opsjobs: run {run['id']} does not exist"
    # Bob may not use alice's credential either.
    refused = await cli.opsjobs(
        "run",
        "run_commands",
        "-p",
        'targets={"all": true}',
        "-p",
        f"command_template_id={commands}",
        "-p",
        f"credential_id={answer.json()['id']}",
        user="bob",
    )
    assert refused.code == 2
    assert "parameters.credential_id" in one_line(refused)


async def test_run_prints_a_summary_line_for_people(cli: CliStack) -> None:
    result = await cli.opsjobs("run", "diag.echo", "-p", "message=hi there", user="alice")
    assert result.code == 0, result.err
    assert result.out.startswith("run ")
    assert "completed (ok): hi there" in result.out


async def test_failed_run_exits_1_and_watch_replays_it(cli: CliStack) -> None:
    run = await finished_run(cli, "diag.fail", "-p", "message=nope")
    assert run["status"] == "failed"
    again = await cli.opsjobs("runs", "watch", str(run["id"]))
    assert again.code == 1
    assert f"run {run['id']} state failed" in again.err
    assert f"run {run['id']} failed" in again.out


async def test_watch_of_a_completed_run_exits_0(cli: CliStack) -> None:
    run = await finished_run(cli, "diag.echo")
    result = await cli.opsjobs("runs", "watch", str(run["id"]), "-o", "json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == await api_json(cli, f"/api/job-runs/{run['id']}")


async def test_watch_of_a_run_cancelled_while_watched_exits_1(cli: CliStack) -> None:
    queued = await cli.opsjobs(
        "run", "diag.progress", "-p", "steps=200", "-p", "delay=0.1", "--no-wait", user="alice"
    )
    assert queued.code == 0, queued.err
    run_id = queued.out.strip()
    watcher = asyncio.create_task(cli.opsjobs("runs", "watch", run_id, user="alice"))
    # Let the watcher see the run going.
    for _ in range(100):
        progress = await api_json(cli, f"/api/job-runs/{run_id}/progress")
        if (progress["current"] or 0) >= 2:
            break
        await asyncio.sleep(0.2)
    cancelled = await cli.opsjobs("runs", "cancel", run_id, "-o", "json", user="alice")
    assert cancelled.code == 0, cancelled.err
    assert json.loads(cancelled.out)["run_id"] == int(run_id)
    watched = await watcher
    assert watched.code == 1, watched.err
    assert f"run {run_id} progress" in watched.err
    assert f"run {run_id} state cancelled" in watched.err


async def test_input_error_exits_2_naming_the_field(cli: CliStack) -> None:
    result = await cli.opsjobs("run", "diag.progress", "-p", "steps=-1", user="alice")
    assert result.code == 2
    line = one_line(result)
    assert line.startswith("opsjobs: ")
    assert "parameters.steps" in line


async def test_a_refused_filter_exits_2_naming_the_query_field(cli: CliStack) -> None:
    result = await cli.opsjobs("schedules", "list", "--type", "yearly")
    assert result.code == 2
    assert "query.schedule_type" in one_line(result)
    active = await cli.opsjobs("runs", "delete", "--older-than-days", "1", "--status", "running")
    assert active.code == 2
    assert one_line(active) == (
        "opsjobs: pending and running runs are never deleted: running "
        "(query.status: only finished statuses)"
    )
    none_old = await cli.opsjobs("runs", "delete", "--older-than-days", "36500", "-o", "json")
    assert none_old.code == 0, none_old.err
    assert json.loads(none_old.out) == {"deleted": 0}


async def test_usage_error_exits_2(cli: CliStack) -> None:
    result = await cli.opsjobs("runs", "list", "--limit", "1000")
    assert result.code == 2
    assert one_line(result) == (
        "opsjobs: runs list: argument --limit: at most 100 per page, got 1000 "
        "(see opsjobs runs list --help)"
    )
    missing = await cli.opsjobs("runs", "show", "999999")
    assert missing.code == 2
    assert one_line(missing) == "opsjobs: run 999999 does not exist"


async def test_retry_links_the_new_run_and_watches_it(cli: CliStack) -> None:
    run = await finished_run(cli, "diag.fail")
    result = await cli.opsjobs(
        "runs", "retry", str(run["id"]), "--watch", "-o", "json", user="alice"
    )
    assert result.code == 1, result.err
    retried = json.loads(result.out)
    assert retried["retry_of_id"] == run["id"]
    assert retried["status"] == "failed"
    # diag.fail has no targets: retrying only failed targets is refused (409 → 2).
    refused = await cli.opsjobs("runs", "retry", str(run["id"]), "--failed-targets", user="alice")
    assert refused.code == 2
    assert "target" in one_line(refused)


async def test_delete_a_finished_run(cli: CliStack) -> None:
    run = await finished_run(cli, "diag.echo")
    result = await cli.opsjobs("runs", "delete", str(run["id"]), user="alice")
    assert result.code == 0, result.err
    assert (await cli.opsjobs("runs", "show", str(run["id"]))).code == 2
    neither = await cli.opsjobs("runs", "delete")
    assert neither.code == 2
    assert one_line(neither) == "opsjobs: give either a run id or --older-than-days"


# ------------------------------------------------------------------ -o json is the API's JSON


async def test_lists_in_json_are_the_apis_json(cli: CliStack) -> None:
    await finished_run(cli, "diag.fail")
    cases: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
        (
            ("runs", "list", "--job-type", "diag.fail", "--limit", "5"),
            "/api/job-runs",
            {"job_type": "diag.fail", "page_size": 5},
        ),
        (
            ("runs", "list", "--status", "failed", "--triggered-by", "api"),
            "/api/job-runs",
            {"status": "failed", "triggered_by": "api", "page_size": 50},
        ),
        (("templates", "list"), "/api/job-templates", {}),
        (("templates", "types"), "/api/job-templates/types", {}),
        (("schedules", "list", "--active"), "/api/job-schedules", {"is_active": "true"}),
        (
            ("audit", "--action", "run", "--limit", "3"),
            "/api/audit",
            {"action": "run", "page_size": 3},
        ),
    ]
    for args, path, params in cases:
        result = await cli.opsjobs(*args, "-o", "json")
        assert result.code == 0, (args, result.err)
        assert json.loads(result.out) == await api_json(cli, path, **params), args


async def test_show_verbs_in_json_are_the_apis_json(cli: CliStack) -> None:
    run = await finished_run(cli, "diag.echo")
    template = (await api_json(cli, "/api/job-templates"))["items"][0]
    schedule = (await api_json(cli, "/api/job-schedules"))["items"][0]
    cases = [
        (
            ("runs", "show", str(run["id"])),
            f"/api/job-runs/{run['id']}",
            {"targets_page_size": 100},
        ),
        (("templates", "show", str(template["id"])), f"/api/job-templates/{template['id']}", {}),
        (("schedules", "show", str(schedule["id"])), f"/api/job-schedules/{schedule['id']}", {}),
        (
            ("schedules", "preview", str(schedule["id"]), "--count", "3"),
            f"/api/job-schedules/{schedule['id']}/preview",
            {"count": 3},
        ),
    ]
    for args, path, params in cases:
        result = await cli.opsjobs(*args, "-o", "json")
        assert result.code == 0, (args, result.err)
        assert json.loads(result.out) == await api_json(cli, path, **params), args


async def test_status_verbs_in_json(cli: CliStack) -> None:
    """Queues, workers and the scheduler change by the second: the same items, not the
    same ages."""
    queues = await cli.opsjobs("queues", "-o", "json")
    assert queues.code == 0, queues.err
    api_queues = await api_json(cli, "/api/queues")
    assert [q["name"] for q in json.loads(queues.out)["items"]] == [
        q["name"] for q in api_queues["items"]
    ]
    workers = await cli.opsjobs("workers", "-o", "json")
    assert workers.code == 0, workers.err
    shown = json.loads(workers.out)
    assert shown["total"] >= 1
    assert {w["worker_id"] for w in shown["workers"]} == {
        w["worker_id"] for w in (await api_json(cli, "/api/workers"))["workers"]
    }
    scheduler = await cli.opsjobs("scheduler", "-o", "json")
    assert scheduler.code == 0, scheduler.err
    status = json.loads(scheduler.out)
    api_status = await api_json(cli, "/api/scheduler/status")
    assert status.keys() == api_status.keys()
    assert status["total_schedules"] == api_status["total_schedules"]


# ------------------------------------------------------------------ tables


async def test_tables_are_plain_when_piped(cli: CliStack) -> None:
    run = await finished_run(cli, "diag.fail")
    for args in (
        ("runs", "list"),
        ("runs", "list", "-o", "wide"),
        ("runs", "show", str(run["id"])),
        ("queues",),
        ("workers",),
        ("scheduler",),
        ("schedules", "list"),
        ("templates", "list"),
    ):
        result = await cli.opsjobs(*args)
        assert result.code == 0, (args, result.err)
        assert ANSI not in result.out, args
        assert result.out.strip(), args
    listing = await cli.opsjobs("runs", "list", "--job-type", "diag.fail", "-o", "wide")
    header = listing.out.splitlines()[0].split()
    assert header[:4] == ["ID", "NAME", "STATUS", "OUTCOME"]
    assert "SUMMARY" in header
    row = next(line for line in listing.out.splitlines() if line.split()[:1] == [str(run["id"])])
    assert "failed" in row.split()


def _read_all(leader: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


async def _on_a_terminal(
    cli: CliStack, *args: str, env: dict[str, str] | None = None, stream: str = "stdout"
) -> tuple[Result, str]:
    """Run the CLI with stdout (or stderr) on a pseudo-terminal; what the terminal got."""
    leader, follower = pty.openpty()
    try:
        result = await cli.opsjobs(
            *args,
            env={"TERM": "xterm-256color", "COLUMNS": "200", **(env or {})},
            **{stream: follower},  # type: ignore[arg-type]
        )
        os.close(follower)
        follower = -1
        return result, _read_all(leader)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)


async def test_colour_on_a_terminal_unless_no_color(cli: CliStack) -> None:
    await finished_run(cli, "diag.fail")
    result, coloured = await _on_a_terminal(cli, "runs", "list", "--status", "failed")
    assert result.code == 0, result.err
    assert ANSI in coloured
    result, plain = await _on_a_terminal(
        cli, "runs", "list", "--status", "failed", env={"NO_COLOR": "1"}
    )
    assert result.code == 0, result.err
    assert "failed" in plain
    assert "\x1b[3" not in plain
    assert "\x1b[1;3" not in plain
    assert "\x1b[9" not in plain


async def test_watch_on_a_terminal_shows_a_progress_bar_with_target_counts(
    cli: CliStack,
) -> None:
    templates = (await api_json(cli, "/api/job-templates", job_type="check_queues"))["items"]
    result, terminal = await _on_a_terminal(
        cli, "templates", "run", str(templates[0]["id"]), "--watch", stream="stderr"
    )
    assert result.code == 0, terminal
    last = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal).replace("\r", "\n")
    bar = [line for line in last.splitlines() if "100%" in line]
    assert bar, last
    assert "completed" in bar[-1]
    assert re.search(r"succeeded [1-9]", bar[-1]), bar[-1]
    assert "completed (" in result.out


# ------------------------------------------------------------------ templates and schedules


async def test_template_run_watch_and_fail_on(cli: CliStack) -> None:
    """The lab's backlog check finds red queues: ``--fail-on`` turns its outcome into 1."""
    templates = (await api_json(cli, "/api/job-templates", job_type="check_queues"))["items"]
    template_id = str(templates[0]["id"])
    result = await cli.opsjobs("templates", "run", template_id, "--watch", "-o", "json")
    assert result.code == 0, result.err
    run = json.loads(result.out)
    assert run["status"] == "completed"
    assert run["outcome"] in ("warning", "critical")
    warned = await cli.opsjobs("runs", "show", str(run["id"]), "--fail-on", "warning")
    assert warned.code == 1
    worst = await cli.opsjobs("runs", "watch", str(run["id"]), "--fail-on", "critical")
    assert worst.code == (1 if run["outcome"] == "critical" else 0)
    again = await cli.opsjobs("templates", "run", template_id, "--watch", "--fail-on", "warning")
    assert again.code == 1, again.err


async def test_schedule_pause_resume_and_run(cli: CliStack) -> None:
    schedule = (await api_json(cli, "/api/job-schedules", is_active="true"))["items"][0]
    schedule_id = str(schedule["id"])
    paused = await cli.opsjobs("schedules", "pause", schedule_id, "-o", "json")
    assert paused.code == 0, paused.err
    assert json.loads(paused.out)["is_active"] is False
    listed = await cli.opsjobs("schedules", "list", "--paused", "-o", "json")
    assert schedule["id"] in [item["id"] for item in json.loads(listed.out)["items"]]
    resumed = await cli.opsjobs("schedules", "resume", schedule_id, "-o", "json")
    assert json.loads(resumed.out)["is_active"] is True
    ran = await cli.opsjobs("schedules", "run", schedule_id, "--watch", "-o", "json")
    assert ran.code in (0, 1), ran.err
    run = json.loads(ran.out)
    assert run["schedule_id"] == schedule["id"]
    assert run["status"] in ("completed", "failed")


# ------------------------------------------------------------------ run --direct


async def test_run_direct_is_audited_as_direct(cli: CliStack) -> None:
    result = await cli.opsjobs("run", "--direct", "diag.echo", "-p", "message=direct", user=None)
    assert result.code == 0, result.err
    assert " INFO " not in result.err
    audit = await api_json(cli, "/api/audit", action="run", actor=getpass.getuser())
    events = [event for event in audit["items"] if event["details"].get("via") == "direct"]
    assert events, audit
    run = await api_json(cli, f"/api/job-runs/{events[0]['resource_id']}")
    assert (run["executed_by"], run["status"]) == (getpass.getuser(), "completed")


async def test_run_direct_refuses_a_private_resource_of_another_user(cli: CliStack) -> None:
    async with cli.api("alice") as http:
        answer = await http.post(
            "/api/credentials",
            json={
                "name": "alice-private",
                "type": "ssh_password",
                "username": "a",
                "password": "pw-alice-1",
            },
        )
    assert answer.status_code == 201, answer.text
    private = answer.json()["id"]
    before = (await api_json(cli, "/api/job-runs"))["total"]
    result = await cli.opsjobs(
        "run",
        "--direct",
        "run_commands",
        "-p",
        'targets={"all": true}',
        "-p",
        "command_template_id=1",
        "-p",
        f"credential_id={private}",
        user=None,
    )
    assert result.code == 2
    assert f"parameters.credential_id: credential {private} does not exist" in result.err
    assert "Traceback" not in result.err
    assert (await api_json(cli, "/api/job-runs"))["total"] == before


async def test_run_direct_with_redis_down_is_one_line(cli: CliStack) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = await cli.opsjobs(
        "run", "--direct", "diag.echo", user=None, env={"OPSJOBS_REDIS__URL": url}
    )
    assert result.code == 3
    line = one_line(result)
    assert f"cannot reach Redis at {url}" in line
    assert "OPSJOBS_REDIS__URL" in line
