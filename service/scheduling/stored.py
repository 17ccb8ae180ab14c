"""Schedules as stored rows: their spec, policies, and the checks made before a row is written.

`service.scheduling.specs` knows when a spec fires; this module turns a ``job_schedules`` row
(or the fields of an API body) into that spec and refuses invalid input with errors that
name the field, so nothing invalid is ever stored and no schedule stops silently later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

import pydantic

from service.db.models import JobSchedule
from service.errors import InvalidInput
from service.scheduling.specs import ScheduleSpec

MisfirePolicy = Literal["skip", "run_once", "run_all"]
OverlapPolicy = Literal["skip", "queue", "cancel_previous", "allow"]
MISFIRE_POLICIES: tuple[str, ...] = get_args(MisfirePolicy)
OVERLAP_POLICIES: tuple[str, ...] = get_args(OverlapPolicy)

SPEC_FIELDS: tuple[str, ...] = tuple(ScheduleSpec.model_fields)


def spec_fields(schedule: JobSchedule) -> dict[str, Any]:
    """The spec columns of a stored schedule, as ScheduleSpec input."""
    return {field: getattr(schedule, field) for field in SPEC_FIELDS}


def spec_of(schedule: JobSchedule) -> ScheduleSpec:
    """The spec of a stored schedule; InvalidInput if the row no longer validates."""
    return validated_spec(spec_fields(schedule), loc=("schedule",))


def validated_spec(fields: Mapping[str, Any], *, loc: tuple[str, ...] = ("body",)) -> ScheduleSpec:
    """Build a ScheduleSpec; a bad value is an InvalidInput whose details name the field."""
    try:
        return ScheduleSpec.model_validate(dict(fields))
    except pydantic.ValidationError as exc:
        details = [
            {"loc": [*loc, *error["loc"]], "msg": error["msg"], "type": error["type"]}
            for error in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        fields_named = ", ".join(".".join(str(part) for part in item["loc"]) for item in details)
        raise InvalidInput(f"invalid schedule: {fields_named}", details=details) from None


def spec_columns(spec: ScheduleSpec) -> dict[str, Any]:
    """Column values of a validated spec (fields foreign to its type are cleared)."""
    return {
        "schedule_type": spec.schedule_type,
        "interval_minutes": spec.interval_minutes,
        "time_of_day": spec.time_of_day.strftime("%H:%M") if spec.time_of_day else None,
        "weekdays": list(spec.weekdays) if spec.weekdays is not None else None,
        "day_of_month": spec.day_of_month,
        "cron_expression": spec.cron_expression,
        "timezone": spec.timezone,
        "start_at": spec.start_at,
        "end_at": spec.end_at,
    }
