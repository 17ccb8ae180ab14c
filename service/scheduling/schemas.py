"""Request and response models of schedules (the API and the console take the same)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from service.access.resources import ResourceKind, ResourceRef
from service.scheduling.specs import ScheduleType
from service.scheduling.stored import MisfirePolicy, OverlapPolicy

# Health settings: minutes without a success (≤ 90 days), failed runs in a row, k × p95.
ExpectWithin = Annotated[int, Field(ge=1, le=90 * 24 * 60)]
PauseAfter = Annotated[int, Field(ge=1, le=1000)]
AnomalyFactor = Annotated[float, Field(gt=1, le=1000)]


class SpecIn(BaseModel):
    """When a schedule fires; checked as a whole by ScheduleSpec (errors name the field)."""

    model_config = ConfigDict(extra="forbid")

    schedule_type: ScheduleType
    interval_minutes: int | None = None
    time_of_day: str | None = None
    weekdays: list[int | str] | None = None
    day_of_month: int | None = None
    cron_expression: str | None = None
    timezone: str = "UTC"
    start_at: datetime | None = None
    end_at: datetime | None = None


class ScheduleIn(SpecIn):
    job_identifier: str = Field(min_length=1, max_length=255)
    template_id: Annotated[int, ResourceRef(ResourceKind.JOB_TEMPLATE)]
    is_active: bool = True
    is_global: bool = True
    owner: str | None = Field(default=None, max_length=255)
    credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    misfire_policy: MisfirePolicy = "run_once"
    misfire_cap: int = Field(default=10, ge=1, le=1000)
    overlap_policy: OverlapPolicy = "skip"
    expect_success_within: ExpectWithin | None = None
    pause_after_failures: PauseAfter | None = None
    duration_anomaly_factor: AnomalyFactor | None = None


class ScheduleUpdate(BaseModel):
    """Fields to change; the template of a schedule is fixed (create another schedule)."""

    model_config = ConfigDict(extra="forbid")

    job_identifier: str | None = Field(default=None, min_length=1, max_length=255)
    schedule_type: ScheduleType | None = None
    interval_minutes: int | None = None
    time_of_day: str | None = None
    weekdays: list[int | str] | None = None
    day_of_month: int | None = None
    cron_expression: str | None = None
    timezone: str | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    is_active: bool | None = None
    is_global: bool | None = None
    owner: str | None = Field(default=None, max_length=255)
    credential_id: Annotated[int | None, ResourceRef(ResourceKind.CREDENTIAL)] = None
    parameters: dict[str, Any] | None = None
    misfire_policy: MisfirePolicy | None = None
    misfire_cap: int | None = Field(default=None, ge=1, le=1000)
    overlap_policy: OverlapPolicy | None = None
    expect_success_within: ExpectWithin | None = None
    pause_after_failures: PauseAfter | None = None
    duration_anomaly_factor: AnomalyFactor | None = None


class PreviewIn(SpecIn):
    count: int = Field(default=10, ge=1, le=100)


class HealthOut(BaseModel):
    """``state``: unknown (no verdict yet), ok, unhealthy (dead-man's switch) or paused."""

    state: str
    last_success_at: datetime | None
    consecutive_failures: int
    reason: str | None


class RunNowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(default_factory=dict)
    # Run even inside a maintenance window (audited).
    override_maintenance: bool = False


class ScheduleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    job_identifier: str
    template_id: int
    template_name: str
    template_job_type: str
    schedule_type: str
    interval_minutes: int | None
    time_of_day: str | None
    weekdays: list[int] | None
    day_of_month: int | None
    cron_expression: str | None
    timezone: str
    start_at: datetime | None
    end_at: datetime | None
    is_active: bool
    is_global: bool
    owner: str | None
    credential_id: int | None
    parameters: dict[str, Any]
    misfire_policy: str
    misfire_cap: int
    overlap_policy: str
    expect_success_within: int | None
    pause_after_failures: int | None
    duration_anomaly_factor: float | None
    health: HealthOut
    last_run_at: datetime | None
    next_run_at: datetime | None
    next_run_local: datetime | None
    created_at: datetime
    updated_at: datetime


class FireOut(BaseModel):
    utc: datetime
    local: datetime
    # Names of the maintenance windows this fire falls into (it will be skipped).
    maintenance: list[str] = Field(default_factory=list)


class PreviewOut(BaseModel):
    timezone: str
    fires: list[FireOut]
