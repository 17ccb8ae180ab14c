"""The events rules can ask for, and the draft of one event: what, where, since when, a link."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class EventName(enum.StrEnum):
    RUN_FAILED = "run.failed"
    RUN_LOST = "run.lost"
    RUN_OUTCOME_CHANGED = "run.outcome_changed"
    RUN_SUCCEEDED_AFTER_FAILURE = "run.succeeded_after_failure"
    RUN_DURATION_ANOMALY = "run.duration_anomaly"
    SCHEDULE_UNHEALTHY = "schedule.unhealthy"
    SCHEDULE_RECOVERED = "schedule.recovered"
    SCHEDULE_PAUSED = "schedule.paused"


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Subject:
    """What an event is about, and who may hear of it (the owner scope of its schedule or
    template; ad-hoc runs are global)."""

    key: str
    run_id: int | None = None
    schedule_id: int | None = None
    template_id: int | None = None
    job_type: str | None = None
    is_global: bool = True
    owner: str | None = None


@dataclass(frozen=True)
class EventDraft:
    """An event before it is stored; ``dedup_key`` names the state change it reports."""

    event: EventName
    dedup_key: str
    subject: Subject
    severity: Severity
    title: str
    message: str
    since: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The ``notification_events`` columns."""
        subject = self.subject
        return {
            "event": self.event.value,
            "dedup_key": self.dedup_key,
            "subject": subject.key,
            "run_id": subject.run_id,
            "schedule_id": subject.schedule_id,
            "template_id": subject.template_id,
            "job_type": subject.job_type,
            "is_global": subject.is_global,
            "owner": subject.owner,
            "severity": self.severity.value,
            "title": self.title,
            "message": self.message,
            "since": self.since,
            "details": self.details,
        }


def run_link(public_url: str, run_id: int) -> str:
    return f"{public_url}/runs/{run_id}"


def schedule_link(public_url: str, schedule_id: int) -> str:
    return f"{public_url}/schedules/{schedule_id}"


def when(moment: datetime | None) -> str:
    """A timestamp for people: UTC, to the second."""
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"
