"""The ``opsjobs`` command: client verbs that talk to the API, and server verbs.

Client verbs live in ``service.client``; this module registers them beside the server
verbs and is the only place that owns an event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import importlib.util
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from service import service_version
from service.client.commands import CLIENT_VERBS, add_client_commands, run_client
from service.client.errors import CliError, ExitCode
from service.client.help import GroupedHelpParser, OperatorParser
from service.errors import InvalidInput, OpsjobsError, ServiceUnavailable
from service.logging_config import configure_logging, verbose_migrations

if TYPE_CHECKING:
    from service.settings import Settings

#: ``token create --role``; the values of ``service.db.security_models.Role``, spelled out
#: so that client verbs start without loading the database models.
ROLES = ("admin", "operator", "viewer")
#: Server verbs that log only warnings unless -v: a person runs them and reads their output.
QUIET_VERBS = ("token", "keys")

DESCRIPTION = (
    "Run and watch opsjobs jobs. Client verbs talk to the API as the user of your token "
    "(opsjobs login, or OPSJOBS_URL and OPSJOBS_TOKEN); server verbs run on the server "
    "and read settings.toml."
)


def build_parser() -> argparse.ArgumentParser:
    parser = GroupedHelpParser(prog="opsjobs", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"opsjobs {service_version()}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log INFO (-vv: DEBUG) on stderr (client verbs, token and keys log only warnings)",
    )
    parser.add_argument(
        "--log-level",
        help="logging level, instead of -v (default WARNING for client verbs, token and keys)",
    )
    commands: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OperatorParser
    )
    # --- client verbs (service.client) ---
    add_client_commands(commands)
    # --- server verbs ---
    commands.add_parser("api", help="serve the HTTP API and the web console")
    worker = commands.add_parser("worker", help="run an arq worker for one queue")
    worker.add_argument("--queue", required=True, help="queue name, e.g. default or devices")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    commands.add_parser("up", help="migrate, then run the API and one worker per queue")
    migrate = commands.add_parser("migrate", help="create the database if missing and migrate it")
    migrate.add_argument(
        "-v",
        "--verbose",
        dest="migrate_verbose",
        action="store_true",
        help="log every migration step (alembic INFO)",
    )
    commands.add_parser("lab", help="run the simulators (NiFi, Nautobot, SSH devices), seeded")
    token = commands.add_parser("token", help="API tokens").add_subparsers(
        dest="token_command", required=True, metavar="ACTION"
    )
    create = token.add_parser("create", help="create a token and print it (shown once)")
    create.add_argument("--name", required=True, help="what the token is for")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--user", help="the identity the token acts as (default: --name)")
    keys = commands.add_parser("keys", help="encryption keys of stored secrets").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    keys.add_parser("rotate", help="add a new active key and re-encrypt every stored secret")
    return parser


async def _create_token(settings: Settings, args: argparse.Namespace) -> None:
    from service.access.tokens import create_token
    from service.backends import check_database
    from service.db.engine import create_engine, create_session_factory
    from service.db.security_models import Role

    await check_database(settings)
    engine = create_engine(settings.database)
    try:
        _, token = await create_token(
            create_session_factory(engine),
            name=args.name,
            username=args.user or args.name,
            role=Role(args.role),
            created_by="cli",
        )
    finally:
        await engine.dispose()
    print(token)
    print(
        f"token for {args.user or args.name} ({args.role}); it is not shown again", file=sys.stderr
    )


async def _rotate_keys(settings: Settings) -> None:
    from service.access.credentials import reencrypt_all
    from service.backends import check_database
    from service.db.engine import create_engine, create_session_factory
    from service.secrets import KeyRing, KeyStore

    await check_database(settings)
    ring = await asyncio.to_thread(KeyRing.load, settings.secrets.key_file)
    rotated = ring.with_new_active_key()
    await asyncio.to_thread(rotated.save)
    engine = create_engine(settings.database)
    try:
        count = await reencrypt_all(create_session_factory(engine), KeyStore(rotated))
    finally:
        await engine.dispose()
    print(f"active key is now {rotated.active}; re-encrypted {count} credentials", file=sys.stderr)


async def _migrate(settings: Settings) -> None:
    from service.backends import check_database
    from service.db.engine import create_engine, redacted_url
    from service.db.migrate import ensure_database, migrate
    from service.secrets import KeyRing

    try:
        await ensure_database(settings.database.url)
    except Exception as exc:
        raise ServiceUnavailable(
            f"cannot create or open the database {redacted_url(settings.database.url)} "
            f"({type(exc).__name__}: {exc}); set [database] url in settings.toml "
            "or OPSJOBS_DATABASE__URL"
        ) from None
    await check_database(settings)
    engine = create_engine(settings.database)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    await asyncio.to_thread(KeyRing.load, settings.secrets.key_file, create=True)


def _freeze_startup_objects() -> None:
    """Move everything alive after start-up (modules, app, routes) out of the collector's
    reach: a full collection then walks only what requests create, instead of stalling
    every request in flight for tens of milliseconds."""
    gc.collect()
    gc.freeze()


async def _serve_api(settings: Settings) -> None:
    import uvicorn

    from service.api.app import create_app
    from service.backends import check_database, check_redis
    from service.console.app import install_console
    from service.supervisor import api_port, bind

    # Bound here, not by uvicorn: a busy port is then one line naming its setting.
    sock = bind(api_port(settings))
    await check_database(settings)
    await check_redis(settings)
    config = uvicorn.Config(
        install_console(create_app(settings)),
        host=settings.api.host,
        port=settings.api.port,
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    config.load()
    _freeze_startup_objects()
    await server.serve(sockets=[sock])


async def _run_worker(settings: Settings, queue: str, burst: bool) -> None:
    from service.backends import check_database, check_redis
    from service.worker.app import build_worker

    await check_database(settings)
    await check_redis(settings)
    worker = build_worker(settings, queue, burst=burst)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await worker.async_run()
    finally:
        await worker.close()


async def _up(settings: Settings) -> None:
    from service.backends import check_redis
    from service.supervisor import (
        LAB_CHILD,
        ChildSpec,
        api_port,
        check_ports_free,
        lab_ports,
        prepare_lab,
        supervise,
    )

    # Before anything starts: a busy port would otherwise surface as a child failing.
    check_ports_free([api_port(settings), *(lab_ports(settings) if settings.lab.enabled else [])])
    await _migrate(settings)
    await check_redis(settings)
    children = [ChildSpec("api", ("api",))]
    if settings.lab.enabled:
        _require_lab()
        # Before the workers start: they read known_hosts once, and it must trust the lab.
        await prepare_lab()
        children.append(LAB_CHILD)
    children += [
        ChildSpec(f"worker[{queue}]", ("worker", "--queue", queue))
        for queue in settings.queues.names()
    ]
    print(
        f"opsjobs up: API on http://{settings.api.host}:{settings.api.port}, "
        f"workers for {', '.join(settings.queues.names())}; Ctrl-C stops everything",
        file=sys.stderr,
    )
    await supervise(children, grace=settings.worker.shutdown_grace + 5)


def _require_lab() -> None:
    """The lab ships beside the product (``lab/`` in the repository), not inside it."""
    if importlib.util.find_spec("lab") is None:
        raise InvalidInput(
            "the lab simulators are not installed (the lab/ package of the repository); "
            "install opsjobs from its repository or set [lab] enabled = false"
        )


async def _serve_lab(settings: Settings) -> int:
    from service.supervisor import run_lab

    if not settings.lab.enabled:
        raise InvalidInput("the lab is off; set [lab] enabled = true or OPSJOBS_LAB__ENABLED=true")
    _require_lab()
    return await run_lab()


async def _run_direct(settings: Settings, args: argparse.Namespace) -> int:
    from service.backends import check_database, check_redis
    from service.client.follow import follow_run, queue_adhoc_run

    await check_database(settings)
    await check_redis(settings)
    run_id, queue = await queue_adhoc_run(
        settings,
        args.job_type,
        dict(args.param),
        args.queue,
        os_user=getpass.getuser(),
        timeout_seconds=args.timeout,
    )
    print(f"run {run_id} queued on {queue}", file=sys.stderr)
    if args.no_wait:
        print(run_id)
        return 0
    return await follow_run(settings, run_id, fail_on=args.fail_on)


def _log_level(args: argparse.Namespace) -> str:
    if args.log_level:
        return str(args.log_level).upper()
    if args.verbose:
        return "DEBUG" if args.verbose > 1 else "INFO"
    return "WARNING" if args.command in (*QUIET_VERBS, *CLIENT_VERBS) else "INFO"


def _client(args: argparse.Namespace) -> int:
    try:
        return run_client(args)
    except CliError as exc:
        print(f"opsjobs: {exc.message}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(_log_level(args))
    if args.command == "migrate" and (args.migrate_verbose or args.verbose):
        verbose_migrations()
    if args.command in CLIENT_VERBS and not getattr(args, "direct", False):
        return _client(args)
    from pydantic import ValidationError

    from service.settings import load_settings
    from service.supervisor import EXIT_SETTINGS, ChildRefused

    try:
        settings = load_settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            print(f"opsjobs: invalid setting {where}: {error['msg']}", file=sys.stderr)
        return EXIT_SETTINGS
    try:
        if args.command == "api":
            asyncio.run(_serve_api(settings))
        elif args.command == "worker":
            asyncio.run(_run_worker(settings, args.queue, args.burst))
        elif args.command == "up":
            asyncio.run(_up(settings))
        elif args.command == "migrate":
            asyncio.run(_migrate(settings))
            print("database is at the newest schema", file=sys.stderr)
        elif args.command == "run":
            return asyncio.run(_run_direct(settings, args))
        elif args.command == "lab":
            return asyncio.run(_serve_lab(settings))
        elif args.command == "token":
            asyncio.run(_create_token(settings, args))
        elif args.command == "keys":
            asyncio.run(_rotate_keys(settings))
    except OpsjobsError as exc:
        print(f"opsjobs: {exc.message}", file=sys.stderr)
        if isinstance(exc, ServiceUnavailable):
            return ExitCode.UNREACHABLE
        if isinstance(exc.details, list):
            for item in exc.details:
                if isinstance(item, dict) and "loc" in item:
                    loc = ".".join(str(part) for part in item["loc"])
                    print(f"  {loc}: {item.get('msg')}", file=sys.stderr)
        return EXIT_SETTINGS
    except ChildRefused:
        # The child printed why; every other child has been stopped.
        return EXIT_SETTINGS
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
