"""``diag.fail``: fails on purpose after keeping partial data — proves failures keep results."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from executors.base import Executor, JobContext, JobResult


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(default="failing on purpose", max_length=1000)
    # From this attempt on the run succeeds instead: a failure that a retry policy cures.
    succeed_from_attempt: int | None = Field(default=None, ge=1, le=100)


class DiagnosticFailure(RuntimeError):
    """The error ``diag.fail`` raises."""


async def execute(job: JobContext[Config]) -> JobResult:
    """Record partial data, then raise (or succeed from ``succeed_from_attempt`` on)."""
    first_success = job.config.succeed_from_attempt
    if first_success is not None and job.attempt >= first_success:
        return JobResult(
            summary=f"succeeded at attempt {job.attempt}", data={"attempt": job.attempt}
        )
    job.checkpoint({"partial": True, "message": job.config.message})
    await job.reporter.log("about to fail", level="warning")
    raise DiagnosticFailure(job.config.message)


EXECUTOR = Executor(
    job_type="diag.fail",
    label="Fail",
    description=(
        "Keeps partial data, then fails (until a given attempt); checks that failed runs "
        "keep their result and that retry policies retry."
    ),
    config=Config,
    execute=execute,
)
