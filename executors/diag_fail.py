"""``diag.fail``: fails on purpose after keeping partial data — proves failures keep results."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from executors.base import Executor, JobContext, JobResult


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(default="failing on purpose", max_length=1000)


class DiagnosticFailure(RuntimeError):
    """The error ``diag.fail`` raises."""


async def execute(job: JobContext[Config]) -> JobResult:
    """Record partial data, then raise."""
    job.checkpoint({"partial": True, "message": job.config.message})
    await job.reporter.log("about to fail", level="warning")
    raise DiagnosticFailure(job.config.message)


EXECUTOR = Executor(
    job_type="diag.fail",
    label="Fail",
    description="Keeps partial data, then fails; checks that failed runs keep their result.",
    config=Config,
    execute=execute,
)
