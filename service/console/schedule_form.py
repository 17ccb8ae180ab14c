"""The schedule form: what a person typed, as the API's schedule models, and back.

Every field is kept as typed so a refused form comes back as it was, with each error
next to the field it names; the fires of a preview are marked on days the clocks change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, get_args
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from starlette.datastructures import FormData

from service.scheduling.schemas import FireOut, ScheduleOut
from service.scheduling.specs import ScheduleType
from service.scheduling.stored import OverlapPolicy

SCHEDULE_TYPES: tuple[str, ...] = get_args(ScheduleType)
OVERLAP_POLICIES: tuple[str, ...] = get_args(OverlapPolicy)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Fields the spec reads; the preview sends only these.
SPEC_TEXT_FIELDS = (
    "schedule_type",
    "interval_minutes",
    "time_of_day",
    "day_of_month",
    "cron_expression",
    "timezone",
    "start_at",
    "end_at",
)
TEXT_FIELDS = (
    "job_identifier",
    "template_id",
    *SPEC_TEXT_FIELDS,
    "credential_id",
    "parameters",
    "misfire_policy",
    "misfire_cap",
    "overlap_policy",
)


@dataclass(frozen=True)
class ScheduleForm:
    """The form's values as text, the ticked weekdays and boxes, and errors per field."""

    texts: dict[str, str]
    weekdays: tuple[str, ...]
    is_active: bool
    is_global: bool

    @classmethod
    def blank(cls, template_id: int | None = None) -> ScheduleForm:
        texts = dict.fromkeys(TEXT_FIELDS, "")
        texts.update(
            schedule_type="daily",
            time_of_day="06:00",
            timezone="UTC",
            parameters="{}",
            misfire_policy="run_once",
            misfire_cap="10",
            overlap_policy="skip",
            template_id=str(template_id or ""),
        )
        return cls(texts=texts, weekdays=(), is_active=True, is_global=True)

    @classmethod
    def of(cls, schedule: ScheduleOut) -> ScheduleForm:
        values = schedule.model_dump()
        texts = {}
        for name in TEXT_FIELDS:
            value = values.get(name)
            if name == "parameters":
                texts[name] = json.dumps(value or {})
            elif isinstance(value, datetime):
                texts[name] = value.isoformat()
            else:
                texts[name] = "" if value is None else str(value)
        return cls(
            texts=texts,
            weekdays=tuple(WEEKDAYS[day] for day in schedule.weekdays or ()),
            is_active=schedule.is_active,
            is_global=schedule.is_global,
        )

    @classmethod
    def submitted(cls, form: FormData | Mapping[str, Any]) -> ScheduleForm:
        texts = {}
        for name in TEXT_FIELDS:
            raw = form.get(name)
            texts[name] = raw.strip() if isinstance(raw, str) else ""
        days = form.getlist("weekdays") if isinstance(form, FormData) else []
        return cls(
            texts=texts,
            weekdays=tuple(day for day in WEEKDAYS if day in days),
            is_active=form.get("is_active") == "true",
            is_global=form.get("is_global") == "true",
        )

    def spec_values(self) -> dict[str, Any]:
        """The spec's fields, empty ones left out (each type needs only some)."""
        values: dict[str, Any] = {
            name: self.texts[name] for name in SPEC_TEXT_FIELDS if self.texts.get(name)
        }
        if self.weekdays:
            values["weekdays"] = list(self.weekdays)
        return values

    def values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The body for ``ScheduleIn``/``ScheduleUpdate`` and the fields that cannot be read."""
        errors: dict[str, str] = {}
        values: dict[str, Any] = {
            name: self.texts[name]
            for name in TEXT_FIELDS
            if name != "parameters" and self.texts.get(name)
        }
        # A cleared field clears the value (the spec fields not used by a type included).
        for name in ("interval_minutes", "time_of_day", "day_of_month", "cron_expression"):
            values.setdefault(name, None)
        for name in ("start_at", "end_at", "credential_id"):
            values.setdefault(name, None)
        values["weekdays"] = list(self.weekdays) or None
        values["is_active"] = self.is_active
        values["is_global"] = self.is_global
        try:
            parameters = json.loads(self.texts.get("parameters") or "{}")
        except json.JSONDecodeError as exc:
            errors["parameters"] = f"not valid JSON: {exc.msg}"
        else:
            if isinstance(parameters, dict):
                values["parameters"] = parameters
            else:
                errors["parameters"] = "must be a JSON object"
        return values, errors


def validation_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors keyed by the field they name."""
    errors: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        errors.setdefault(loc[0] if loc else "form", str(error["msg"]))
    return errors


@dataclass(frozen=True)
class MarkedFire:
    fire: FireOut
    dst_change: bool


def mark_dst_days(fires: list[FireOut], zone_name: str) -> list[MarkedFire]:
    """Each fire, marked when its local day is one on which the zone's UTC offset changes."""
    zone = ZoneInfo(zone_name)
    marked = []
    for fire in fires:
        day = fire.local.date()
        start = datetime.combine(day, time(0), tzinfo=zone)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        marked.append(MarkedFire(fire=fire, dst_change=start.utcoffset() != end.utcoffset()))
    return marked
