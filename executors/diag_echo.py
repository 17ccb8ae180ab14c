"""``diag.echo``: returns its message — the smallest end-to-end check of the pipeline."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from executors.base import Executor, JobContext, JobResult


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(default="hello", max_length=10_000)


async def execute(job: JobContext[Config]) -> JobResult:
    """Echo the configured message back as the result."""
    return JobResult(summary=job.config.message, data={"message": job.config.message})


EXECUTOR = Executor(
    job_type="diag.echo",
    label="Echo",
    description="Returns its message; checks that runs flow from API to worker to database.",
    config=Config,
    execute=execute,
)
