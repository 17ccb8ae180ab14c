"""The client verbs: everything an operator does through the API from a terminal or a script.

``add_client_commands`` registers the verbs on the ``opsjobs`` parser; ``run_client`` runs
one and returns its exit code (see ``service.client.errors.ExitCode``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from service.client.config import (
    Login,
    config_path,
    load_login,
    normalise_url,
    remove_login,
    save_login,
)
from service.client.errors import CliError, ExitCode
from service.client.http import Api
from service.client.output import FORMATS, Column, Printer, column, time_column, when
from service.client.watch import FAIL_ON, exit_code, watch_run

#: Verbs handled here; every other verb of ``opsjobs`` is a server verb.
CLIENT_VERBS = (
    "login",
    "logout",
    "run",
    "runs",
    "templates",
    "schedules",
    "queues",
    "workers",
    "scheduler",
    "audit",
)
MAX_PAGE_SIZE = 100


def parse_parameter(raw: str) -> tuple[str, Any]:
    key, sep, value = raw.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {raw!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _limit(raw: str) -> int:
    value = _positive(raw)
    if value > MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"at most {MAX_PAGE_SIZE} per page, got {value}")
    return value


# ---------------------------------------------------------------- parser


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        default="table",
        help="table (default), wide (more columns) or json (the API's answer, for scripts)",
    )


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=_limit, default=50, help="rows per page (1-100, default 50)"
    )
    parser.add_argument("--page", type=_positive, default=1, help="page number (default 1)")


def _fail_on(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        help="exit 1 when the run's outcome is this bad or worse (for cron and CI checks)",
    )


def _watch(parser: argparse.ArgumentParser, *, default: bool = False) -> None:
    if default:
        parser.add_argument(
            "--no-wait", action="store_true", help="print the run id and return at once"
        )
    else:
        parser.add_argument(
            "--watch", action="store_true", help="follow the run and exit with its exit code"
        )
    _fail_on(parser)


def _params(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        type=parse_parameter,
        metavar="KEY=VALUE",
        help=f"{what} (VALUE is read as JSON when it is valid JSON); repeat for more",
    )
    parser.add_argument(
        "--override-maintenance",
        action="store_true",
        help="run even inside a maintenance window (recorded in the audit log)",
    )


def _noun(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    parser = commands.add_parser(name, help=help, description=help)
    return parser.add_subparsers(dest="action", required=True, metavar="ACTION")


def _verb(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help: str,
    *,
    output: bool = True,
) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=help, description=help)
    if output:
        _output(parser)
    return parser


def add_client_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    login = commands.add_parser(
        "login",
        help="save the API URL and your token for the other client verbs",
        description=(
            f"Check a token against the API and save URL and token in {config_path()} "
            "(readable by you only). OPSJOBS_URL and OPSJOBS_TOKEN override the file."
        ),
    )
    login.add_argument(
        "--url", help="the API, e.g. http://opsjobs.example:8000 (asked if left out)"
    )
    login.add_argument("--token", help="your API token, ojt_… (asked if left out, not echoed)")
    commands.add_parser("logout", help="forget the saved URL and token")

    run = commands.add_parser(
        "run",
        help="start a run of a job type and follow it to its end",
        description=(
            "Queue an ad-hoc run of a job type through the API, as the logged-in user, and "
            "follow it; exits 0 when it completes, 1 when it fails or is cancelled."
        ),
    )
    run.add_argument(
        "job_type", help="job type, e.g. diag.echo (opsjobs templates types lists them)"
    )
    _params(run, "a parameter")
    run.add_argument("--queue", help="queue to use instead of the job type's default")
    run.add_argument("--timeout", type=_positive, metavar="SECONDS", help="stop the run after this")
    run.add_argument(
        "--direct",
        action="store_true",
        help=(
            "on the server: queue through PostgreSQL and Redis (settings.toml) without the "
            "API, as your OS user; recorded in the audit log as direct"
        ),
    )
    _watch(run, default=True)
    _output(run)

    runs = _noun(commands, "runs", "list, inspect, follow, cancel, retry and delete runs")
    listing = _verb(runs, "list", "runs, newest first")
    listing.add_argument(
        "--status", help="pending, running, completed, failed, cancelled, skipped (comma-separated)"
    )
    listing.add_argument("--outcome", help="ok, warning, critical, unknown (comma-separated)")
    listing.add_argument("--job-type", help="job type(s), comma-separated")
    listing.add_argument(
        "--triggered-by", help="how runs were started, e.g. api, manual, schedule (comma-separated)"
    )
    listing.add_argument("--template", metavar="ID", help="template id(s), comma-separated")
    listing.add_argument("--schedule", metavar="ID", help="schedule id(s), comma-separated")
    listing.add_argument("-q", "--search", help="text in the run's name, starter or summary")
    _paging(listing)
    show = _verb(runs, "show", "one run with its targets")
    show.add_argument("run_id", type=_positive)
    show.add_argument(
        "--targets", type=_limit, default=100, help="target rows to show (default 100)"
    )
    _fail_on(show)
    watch = _verb(runs, "watch", "follow a run live until it ends; exits with its exit code")
    watch.add_argument("run_id", type=_positive)
    _fail_on(watch)
    cancel = _verb(runs, "cancel", "cancel a pending run, or ask a running one to stop")
    cancel.add_argument("run_id", type=_positive)
    retry = _verb(runs, "retry", "start a new run with the same inputs")
    retry.add_argument("run_id", type=_positive)
    retry.add_argument(
        "--failed-targets", action="store_true", help="only the targets that did not succeed"
    )
    _watch(retry)
    delete = _verb(runs, "delete", "delete a finished run, or finished runs older than N days")
    delete.add_argument("run_id", type=_positive, nargs="?")
    delete.add_argument(
        "--older-than-days", type=float, metavar="DAYS", help="instead of one run id"
    )
    delete.add_argument(
        "--status", help="with --older-than-days: completed, failed, … (comma-separated)"
    )

    templates = _noun(commands, "templates", "list and show job templates, run one now")
    listing = _verb(templates, "list", "templates you may see, by name")
    listing.add_argument("--job-type", help="only this job type")
    _paging(listing)
    show = _verb(templates, "show", "one template with its configuration")
    show.add_argument("template_id", type=_positive)
    _verb(templates, "types", "the job types and their default queues")
    run = _verb(templates, "run", "queue a run of a template now")
    run.add_argument("template_id", type=_positive)
    _params(run, "a parameter overriding the template's configuration")
    _watch(run)

    schedules = _noun(commands, "schedules", "list, preview, pause, resume and run schedules")
    listing = _verb(schedules, "list", "schedules you may see, newest first")
    active = listing.add_mutually_exclusive_group()
    active.add_argument(
        "--active", dest="is_active", action="store_const", const=True, help="only active ones"
    )
    active.add_argument(
        "--paused", dest="is_active", action="store_const", const=False, help="only paused ones"
    )
    listing.add_argument(
        "--global", dest="is_global", action="store_const", const=True, help="only global ones"
    )
    listing.add_argument("--template", type=_positive, metavar="ID", help="only of this template")
    listing.add_argument(
        "--type",
        dest="schedule_type",
        help="now, interval, hourly, daily, weekly, monthly or custom",
    )
    listing.add_argument("--owner", help="only this owner's")
    listing.add_argument("--health", help="ok, unhealthy, paused or unknown")
    _paging(listing)
    for name, text in (
        ("show", "one schedule"),
        ("pause", "stop a schedule firing (it keeps its settings)"),
        ("resume", "let a paused schedule fire again"),
    ):
        _verb(schedules, name, text).add_argument("schedule_id", type=_positive)
    preview = _verb(schedules, "preview", "the next fire times (and maintenance windows hit)")
    preview.add_argument("schedule_id", type=_positive)
    preview.add_argument("--count", type=_limit, default=10, help="how many fires (default 10)")
    run = _verb(schedules, "run", "queue a run of a schedule now")
    run.add_argument("schedule_id", type=_positive)
    _params(run, "a parameter overriding the schedule's")
    _watch(run)

    _output(commands.add_parser("queues", help="queue depths: pending, running, oldest wait"))
    _output(commands.add_parser("workers", help="live workers and the runs they are running"))
    _output(commands.add_parser("scheduler", help="is the scheduler ticking, what fires next"))
    audit = commands.add_parser("audit", help="who did what, when (admins)")
    audit.add_argument("--actor", help="only this user's actions")
    audit.add_argument("--action", help="e.g. run, create, update, delete, cancel")
    audit.add_argument("--resource-type", help="e.g. job_run, job_template, job_schedule")
    _paging(audit)
    _output(audit)


# ---------------------------------------------------------------- columns

RUN_COLUMNS = (
    column("ID"),
    column("Name", "job_name"),
    column("Status", coloured=True),
    column("Outcome", coloured=True),
    column("Trigger", "triggered_by"),
    column("By", "executed_by"),
    time_column("Queued", "queued_at"),
    column("Secs", "duration_seconds"),
    column("Type", "job_type", wide=True),
    column("Queue", wide=True),
    column("Template", "template_id", wide=True),
    column("Schedule", "schedule_id", wide=True),
    column("Retry of", "retry_of_id", wide=True),
    column("Private to", "private_to", wide=True),
    column("Summary", wide=True),
)
TARGET_COLUMNS = (
    column("#", "position"),
    column("Key"),
    column("Name"),
    column("Status", coloured=True),
    column("Outcome", coloured=True),
    column("Error"),
    time_column("Started", "started_at", wide=True),
    time_column("Finished", "finished_at", wide=True),
)
TEMPLATE_COLUMNS = (
    column("ID"),
    column("Name"),
    column("Type", "job_type"),
    column("Owner"),
    column("Global", "is_global"),
    column("Queue"),
    column("Description", wide=True),
    column("Timeout", "timeout_seconds", wide=True),
    column("Attempts", "max_attempts", wide=True),
    column("Max runs", "max_concurrent_runs", wide=True),
    time_column("Updated", "updated_at", wide=True),
)
SCHEDULE_COLUMNS = (
    column("ID"),
    column("Identifier", "job_identifier"),
    column("Template", "template_name"),
    column("Type", "schedule_type"),
    Column("When", lambda item: _schedule_when(item)),
    column("Active", "is_active"),
    Column("Health", lambda item: item["health"]["state"], coloured=True),
    time_column("Next run", "next_run_at"),
    column("Owner", wide=True),
    column("Global", "is_global", wide=True),
    column("Timezone", wide=True),
    time_column("Last run", "last_run_at", wide=True),
    column("Template id", "template_id", wide=True),
)
QUEUE_COLUMNS = (
    column("Name"),
    column("Pending"),
    column("Running"),
    column("Arq jobs", "arq_jobs"),
    column("Oldest wait s", "oldest_queued_age_seconds"),
    column("Configured", wide=True),
    time_column("Oldest queued", "oldest_queued_at", wide=True),
)
WORKER_COLUMNS = (
    column("Worker", "worker_id"),
    column("Queue"),
    column("Host"),
    column("PID"),
    Column("Runs", lambda item: ",".join(str(i) for i in item["running_runs"]) or "-"),
    column("Beat age s", "beat_age_seconds"),
    column("Version", wide=True),
    time_column("Started", "started_at", wide=True),
)
AUDIT_COLUMNS = (
    column("ID"),
    time_column("At", "at"),
    column("Actor"),
    column("Action"),
    column("Resource", "resource_type"),
    column("Resource id", "resource_id"),
    column("Source IP", "source_ip", wide=True),
    column("Details", wide=True),
)


def _schedule_when(item: Mapping[str, Any]) -> str:
    kind = item["schedule_type"]
    if kind == "interval":
        return f"every {item['interval_minutes']} min"
    if kind == "custom":
        return str(item["cron_expression"])
    if kind in ("hourly", "daily", "weekly", "monthly"):
        days = item.get("weekdays") or ([item["day_of_month"]] if item.get("day_of_month") else [])
        on = f" on {','.join(str(d) for d in days)}" if days else ""
        return f"{item.get('time_of_day')}{on}"
    return str(kind)


# ---------------------------------------------------------------- handlers


class Context:
    def __init__(self, args: argparse.Namespace, api: Api) -> None:
        self.args = args
        self.api = api
        self.printer = Printer(getattr(args, "output", "table"))

    def page(self, path: str, filters: Mapping[str, Any], columns: Sequence[Column]) -> int:
        page = self.api.get(path, {**filters, "page": self.args.page, "page_size": self.args.limit})
        if self.printer.format == "json":
            self.printer.json(page)
        else:
            self.printer.table(page["items"], columns)
            self.printer.paged(page)
        return ExitCode.OK

    def show(self, data: Any, render: Callable[[], None]) -> int:
        if self.printer.format == "json":
            self.printer.json(data)
        else:
            render()
        return ExitCode.OK

    def queued(self, run: Mapping[str, Any], *, follow: bool) -> int:
        if not follow:
            if self.printer.format == "json":
                self.printer.json(run)
            else:
                self.printer.line(str(run["id"]))
            self.printer.note(f"run {run['id']} queued on {run['queue']}")
            return ExitCode.OK
        self.printer.note(f"run {run['id']} queued on {run['queue']}")
        return watch_run(self.api, self.printer, int(run["id"]), fail_on=self.args.fail_on)


def _run_body(args: argparse.Namespace) -> dict[str, Any]:
    return {"parameters": dict(args.param), "override_maintenance": args.override_maintenance}


def _show_run(ctx: Context, run: Mapping[str, Any]) -> None:
    progress = run.get("progress") or {}
    done = progress.get("percent")
    ctx.printer.fields(
        [
            ("Run", run["id"]),
            ("Name", run["job_name"]),
            ("Type", run["job_type"]),
            ("Status", run["status"]),
            ("Outcome", run["outcome"]),
            ("Summary", run["summary"]),
            ("Error", run["error"]),
            ("Triggered by", run["triggered_by"]),
            ("Executed by", run["executed_by"]),
            ("Queue", run["queue"]),
            ("Template", run["template_id"]),
            ("Schedule", run["schedule_id"]),
            ("Retry of", run["retry_of_id"]),
            ("Private to", run["private_to"]),
            ("Attempt", f"{run['attempt']}/{run['max_attempts']}"),
            ("Queued", when(run["queued_at"])),
            ("Started", when(run["started_at"])),
            ("Finished", when(run["finished_at"])),
            ("Duration s", run["duration_seconds"]),
            (
                "Progress",
                f"{done}% {progress.get('message') or ''}".strip() if done is not None else None,
            ),
            (
                "Targets",
                ", ".join(f"{k} {v}" for k, v in sorted(run["target_counts"].items())) or None,
            ),
        ]
        + (
            [("Parameters", run["parameters"]), ("Result", run["result"])]
            if ctx.printer.wide
            else []
        ),
        coloured=("Status", "Outcome"),
    )
    rows = run["target_rows"]["items"]
    if rows:
        ctx.printer.table(rows, TARGET_COLUMNS)
        ctx.printer.paged({**run["target_rows"]})


def _runs(ctx: Context) -> int:
    args, api = ctx.args, ctx.api
    if args.action == "list":
        filters = {
            "status": args.status,
            "outcome": args.outcome,
            "job_type": args.job_type,
            "triggered_by": args.triggered_by,
            "template_id": args.template,
            "schedule_id": args.schedule,
            "q": args.search,
        }
        return ctx.page("/api/job-runs", filters, RUN_COLUMNS)
    if args.action == "show":
        run = api.get(f"/api/job-runs/{args.run_id}", {"targets_page_size": args.targets})
        ctx.show(run, lambda: _show_run(ctx, run))
        return exit_code(run["status"], run.get("outcome"), args.fail_on) if args.fail_on else 0
    if args.action == "watch":
        return watch_run(api, ctx.printer, args.run_id, fail_on=args.fail_on)
    if args.action == "cancel":
        answer = api.post(f"/api/job-runs/{args.run_id}/cancel")
        return ctx.show(answer, lambda: ctx.printer.line(f"run {args.run_id}: {answer['status']}"))
    if args.action == "retry":
        params = {"failed_targets_only": "true" if args.failed_targets else None}
        run = api.create_run(f"/api/job-runs/{args.run_id}/retry", params=params)
        return ctx.queued(run, follow=args.watch)
    if args.action == "delete":
        if (args.run_id is None) == (args.older_than_days is None):
            raise CliError("give either a run id or --older-than-days")
        if args.run_id is not None:
            if args.status:
                raise CliError("--status goes with --older-than-days")
            api.delete(f"/api/job-runs/{args.run_id}")
            return ctx.show({"deleted": 1}, lambda: ctx.printer.line(f"run {args.run_id} deleted"))
        answer = api.delete(
            "/api/job-runs", {"older_than_days": args.older_than_days, "status": args.status}
        )
        return ctx.show(answer, lambda: ctx.printer.line(f"{answer['deleted']} runs deleted"))
    raise AssertionError(args.action)


def _templates(ctx: Context) -> int:
    args, api = ctx.args, ctx.api
    if args.action == "list":
        return ctx.page("/api/job-templates", {"job_type": args.job_type}, TEMPLATE_COLUMNS)
    if args.action == "show":
        template = api.get(f"/api/job-templates/{args.template_id}")
        pairs = [(name.replace("_", " ").capitalize(), value) for name, value in template.items()]
        return ctx.show(template, lambda: ctx.printer.fields(pairs))
    if args.action == "types":
        types = api.get("/api/job-templates/types")
        columns = (
            column("Type", "job_type"),
            column("Label"),
            column("Queue", "default_queue"),
            column("Description", wide=True),
        )
        return ctx.show(types, lambda: ctx.printer.table(types, columns))
    if args.action == "run":
        run = api.create_run(f"/api/job-templates/{args.template_id}/run", _run_body(args))
        return ctx.queued(run, follow=args.watch)
    raise AssertionError(args.action)


def _schedules(ctx: Context) -> int:
    args, api = ctx.args, ctx.api
    path = f"/api/job-schedules/{getattr(args, 'schedule_id', '')}"
    if args.action == "list":
        filters = {
            "is_active": _flag(args.is_active),
            "is_global": _flag(args.is_global),
            "template_id": args.template,
            "schedule_type": args.schedule_type,
            "owner": args.owner,
            "health": args.health,
        }
        return ctx.page("/api/job-schedules", filters, SCHEDULE_COLUMNS)
    if args.action in ("show", "pause", "resume"):
        if args.action == "show":
            schedule = api.get(path)
        else:
            schedule = api.put(path, {"is_active": args.action == "resume"})
        return ctx.show(schedule, lambda: ctx.printer.table([schedule], SCHEDULE_COLUMNS))
    if args.action == "preview":
        preview = api.get(f"{path}/preview", {"count": args.count})
        columns = (
            time_column("UTC", "utc"),
            time_column(f"Local ({preview['timezone']})", "local"),
            Column("Maintenance", lambda item: ", ".join(item["maintenance"]) or "-"),
        )
        return ctx.show(preview, lambda: ctx.printer.table(preview["fires"], columns))
    if args.action == "run":
        run = api.create_run(f"{path}/run", _run_body(args))
        return ctx.queued(run, follow=args.watch)
    raise AssertionError(args.action)


def _flag(value: bool | None) -> str | None:
    return None if value is None else str(value).lower()


def _scheduler(ctx: Context) -> int:
    status = ctx.api.get("/api/scheduler/status")

    def render() -> None:
        tick = status.get("last_tick") or {}
        ctx.printer.fields(
            [
                ("Server time", when(status["server_time"])),
                ("Last tick", when(tick.get("at"))),
                ("Tick age s", tick.get("age_seconds")),
                ("Tick lag s", tick.get("lag_seconds")),
                (
                    "Schedules",
                    f"{status['active_schedules']} active of {status['total_schedules']}",
                ),
                ("Due now", status["due_now"]),
                ("Oldest due s", status["oldest_due_seconds"]),
            ]
        )
        if status["upcoming"]:
            ctx.printer.table(
                status["upcoming"],
                (
                    column("ID"),
                    column("Identifier", "job_identifier"),
                    column("Type", "schedule_type"),
                    time_column("Next run", "next_run_at"),
                    column("In s", "seconds_until"),
                ),
                title="upcoming",
            )

    return ctx.show(status, render)


def _run(ctx: Context) -> int:
    args = ctx.args
    body: dict[str, Any] = {
        "job_type": args.job_type,
        "parameters": dict(args.param),
        "override_maintenance": args.override_maintenance,
    }
    if args.queue:
        body["queue"] = args.queue
    if args.timeout:
        body["timeout_seconds"] = args.timeout
    run = ctx.api.create_run("/api/job-runs", body)
    return ctx.queued(run, follow=not args.no_wait)


def _login(args: argparse.Namespace) -> int:
    url = args.url or _ask("API URL (e.g. http://127.0.0.1:8000): ", option="--url", secret=False)
    token = args.token or _ask("API token: ", option="--token", secret=True)
    login = Login(url=normalise_url(url), token=token.strip())
    with Api(login) as api:
        api.get("/api/job-runs", {"page_size": 1})
    path = save_login(login)
    print(f"logged in to {login.url}; saved in {path}", file=sys.stderr)
    return ExitCode.OK


def _ask(prompt: str, *, option: str, secret: bool) -> str:
    if not sys.stdin.isatty():
        raise CliError(f"no terminal to ask on: pass {option}")
    try:
        answer = getpass.getpass(prompt) if secret else input(prompt)
    except EOFError:
        answer = ""
    if not answer.strip():
        raise CliError(f"{option} is required")
    return answer.strip()


def _logout() -> int:
    removed = remove_login()
    print(f"removed {removed}" if removed else "not logged in", file=sys.stderr)
    return ExitCode.OK


HANDLERS: dict[str, Callable[[Context], int]] = {
    "runs": _runs,
    "templates": _templates,
    "schedules": _schedules,
    "run": _run,
    "queues": lambda ctx: _listing(ctx, "/api/queues", "items", QUEUE_COLUMNS),
    "workers": lambda ctx: _listing(ctx, "/api/workers", "workers", WORKER_COLUMNS),
    "scheduler": _scheduler,
    "audit": lambda ctx: ctx.page(
        "/api/audit",
        {
            "actor": ctx.args.actor,
            "action": ctx.args.action,
            "resource_type": ctx.args.resource_type,
        },
        AUDIT_COLUMNS,
    ),
}


def _listing(ctx: Context, path: str, key: str, columns: Sequence[Column]) -> int:
    answer = ctx.api.get(path)
    return ctx.show(answer, lambda: ctx.printer.table(answer[key], columns))


def run_client(args: argparse.Namespace) -> int:
    """Run one client verb; raises ``CliError`` for a failure to print."""
    if args.command == "login":
        return _login(args)
    if args.command == "logout":
        return _logout()
    with Api(load_login()) as api:
        return int(HANDLERS[args.command](Context(args, api)))
