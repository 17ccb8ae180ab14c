"""``python -m lab``: the simulators as a process of their own, beside the product.

``opsjobs lab`` and ``opsjobs up`` start this module as a child process (the product never
imports the lab). ``serve`` (the default) runs the simulators until SIGINT/SIGTERM;
``prepare`` writes the lab's files (its SSH host key, trusted in ``[ssh] known_hosts``)
and returns, so workers started after it trust the lab's devices.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import signal
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from lab.stack import prepare_lab_files, serve_lab
from service.backends import check_database
from service.db.engine import create_engine, create_session_factory
from service.errors import InvalidInput, OpsjobsError, ServiceUnavailable
from service.logging_config import configure_logging
from service.secrets import KeyRing, KeyStore
from service.settings import Settings, load_settings
from service.supervisor import (
    EXIT_SETTINGS,
    EXIT_UNREACHABLE,
    check_ports_free,
    lab_ports,
)


async def _serve(settings: Settings) -> None:
    check_ports_free(lab_ports(settings))
    await check_database(settings)
    ring = await asyncio.to_thread(KeyRing.load, settings.secrets.key_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    engine = create_engine(settings.database)
    try:
        await serve_lab(settings, create_session_factory(engine), KeyStore(ring), stop)
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    parser.add_argument("action", nargs="?", default="serve", choices=["serve", "prepare"])
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    args = parser.parse_args(argv)
    configure_logging(args.log_level.upper())
    try:
        settings = load_settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            print(f"lab: invalid setting {where}: {error['msg']}", file=sys.stderr)
        return 2
    try:
        if args.action == "prepare":
            prepare_lab_files(settings)
        else:
            try:
                asyncio.run(_serve(settings))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                # Taken between the check and the start: which simulator does not say.
                settings_named = ", ".join(port.setting for port in lab_ports(settings))
                raise InvalidInput(f"a lab port is in use ({settings_named}): {exc}") from None
    except OpsjobsError as exc:
        print(f"lab: {exc.message}", file=sys.stderr)
        return EXIT_UNREACHABLE if isinstance(exc, ServiceUnavailable) else EXIT_SETTINGS
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
