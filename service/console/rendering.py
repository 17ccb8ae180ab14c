"""Jinja2 rendering for the console: one environment, the filters every page shares."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


def format_time(moment: datetime | None) -> str:
    """A timestamp as operators read it: UTC, to the second."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(seconds: float | None) -> str:
    """``42.1 s``, ``3 min 05 s``, ``2 h 04 min``; a dash when unknown."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_percent(value: float) -> str:
    """``5``, ``6.7``, ``100``: one decimal at most, as the pages' script writes it."""
    return format(round(value, 1), "g")


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


class Renderer:
    """Renders a page of the console; made once when the console is installed."""

    def __init__(self) -> None:
        self.templates = Jinja2Templates(directory=TEMPLATES_DIR)
        filters = self.templates.env.filters
        filters["time"] = format_time
        filters["duration"] = format_duration
        filters["pretty_json"] = pretty_json
        filters["percent"] = format_percent
        # Compiled now, at start-up, so no one's first visit of a page pays for it.
        for name in self.templates.env.list_templates(extensions=["html"]):
            self.templates.env.get_template(name)

    def page(
        self, request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
    ) -> HTMLResponse:
        response = self.templates.TemplateResponse(request, name, context, status_code=status_code)
        # Pages show live data and, signed in, private data: never cached or framed.
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response


# Everything comes from opsjobs itself; no page may load or send anything elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
