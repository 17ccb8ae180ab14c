"""Request and response models of ``/api/job-runs`` that only the API needs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.db.models import RunStatus
from service.runs.retries import RetryPolicy


class CreateRunIn(BaseModel):
    """An ad-hoc run of a job type; parameters are validated against its Config."""

    model_config = ConfigDict(extra="forbid")

    job_type: str = Field(min_length=1, max_length=64)
    parameters: dict[str, Any] = Field(default_factory=dict)
    queue: str | None = Field(default=None, min_length=1, max_length=64)
    timeout_seconds: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)
    # Left out: a lost worker is not retried (max_attempts 1), as before retry policies.
    retry: RetryPolicy | None = None
    # Run even inside a maintenance window (audited).
    override_maintenance: bool = False


class CancelOut(BaseModel):
    run_id: int
    status: RunStatus
