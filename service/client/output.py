"""What the client verbs print: tables for people, the API's JSON for scripts.

Colour only when stdout is a terminal and ``NO_COLOR`` is unset (rich decides both);
``-o json`` prints the API's answer as it came, ``-o wide`` adds columns.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "wide", "json")
# Piped output is not wrapped at 80 columns: a script reads whole rows.
PIPE_WIDTH = 250

STYLES = {
    "completed": "green",
    "succeeded": "green",
    "ok": "green",
    "running": "cyan",
    "pending": "blue",
    "warning": "yellow",
    "cancelled": "yellow",
    "skipped": "dim",
    "unknown": "dim",
    "failed": "red",
    "critical": "bold red",
    "unhealthy": "red",
    "paused": "yellow",
}


def console(stream: Any = None) -> Console:
    stream = stream or sys.stdout
    interactive = stream.isatty()
    return Console(
        file=stream,
        width=None if interactive else PIPE_WIDTH,
        soft_wrap=not interactive,
        highlight=False,
    )


def text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def styled(value: Any) -> Text:
    shown = text(value)
    return Text(shown, style=STYLES.get(shown, ""))


def when(value: Any) -> str:
    """A timestamp to the second, ``2026-01-02 03:04:05Z`` for UTC (the API's zone)."""
    if not isinstance(value, str) or "T" not in value:
        return text(value)
    shown = value.replace("T", " ")
    for utc in ("Z", "+00:00"):
        if shown.endswith(utc):
            return shown.removesuffix(utc).partition(".")[0] + "Z"
    head, dot, rest = shown.partition(".")
    if not dot:
        return shown
    zone = rest.lstrip("0123456789")
    return head + zone


@dataclass(frozen=True)
class Column:
    title: str
    value: Callable[[Mapping[str, Any]], Any]
    wide_only: bool = False
    coloured: bool = False


def field(name: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda item: item.get(name)


def column(
    title: str, name: str | None = None, *, wide: bool = False, coloured: bool = False
) -> Column:
    return Column(title, field(name or title.lower()), wide_only=wide, coloured=coloured)


def time_column(title: str, name: str, *, wide: bool = False) -> Column:
    return Column(title, lambda item: when(item.get(name)), wide_only=wide)


class Printer:
    def __init__(self, format: str) -> None:
        self.format = format
        self.out = console()
        self.err = console(sys.stderr)

    @property
    def wide(self) -> bool:
        return self.format == "wide"

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def table(
        self, rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], *, title: str = ""
    ) -> None:
        shown = [item for item in columns if self.wide or not item.wide_only]
        # Piped: a header line and rows, nothing drawn (like ``kubectl get``).
        table = Table(
            box=box.SIMPLE_HEAD if self.out.is_terminal else None,
            title=title or None,
            pad_edge=False,
            show_edge=False,
        )
        for item in shown:
            table.add_column(item.title.upper(), no_wrap=True, overflow="fold")
        for row in rows:
            table.add_row(
                *(
                    styled(item.value(row)) if item.coloured else Text(text(item.value(row)))
                    for item in shown
                )
            )
        self._print(table)

    def _print(self, renderable: Any) -> None:
        if self.out.is_terminal:
            self.out.print(renderable)
            return
        # Piped: no padding after the last column.
        with self.out.capture() as captured:
            self.out.print(renderable)
        sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))

    def fields(self, pairs: Sequence[tuple[str, Any]], coloured: Sequence[str] = ()) -> None:
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for name, value in pairs:
            table.add_row(name, styled(value) if name in coloured else Text(text(value)))
        self._print(table)

    def line(self, message: str) -> None:
        self.out.print(Text(message))

    def note(self, message: str) -> None:
        """A remark for people (paging, what happened) on stderr; scripts read stdout."""
        self.err.print(Text(message))

    def paged(self, page: Mapping[str, Any]) -> None:
        if page.get("total_pages", 1) > 1:
            total = page["total"] if page.get("total_exact", True) else f"at least {page['total']}"
            self.note(
                f"page {page['page']} of {page['total_pages']} ({total} in all; "
                "--page N for another)"
            )
