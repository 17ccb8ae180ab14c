"""The one logging configuration, applied by entry points."""

from __future__ import annotations

import logging
import sys

# Record attributes that are not ``extra=`` fields (uvicorn adds a colourised duplicate).
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class KeyValueFormatter(logging.Formatter):
    """Appends ``extra=`` fields as ``key=value`` so ids stay visible in plain logs."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRS and not key.startswith("_")
        ]
        return f"{line} {' '.join(extras)}" if extras else line


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # arq logs every job start/finish at INFO; its warnings and errors still show.
    logging.getLogger("arq").setLevel(logging.WARNING)
    # asyncssh logs every connection, channel and auth step at INFO: thousands of lines per
    # device fan-out.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    # alembic logs its plugins at import and each migration step at INFO; `opsjobs migrate
    # -v` shows them (``verbose_migrations``).
    logging.getLogger("alembic").setLevel(logging.WARNING)


def verbose_migrations() -> None:
    logging.getLogger("alembic").setLevel(logging.INFO)
