"""``diag.progress``: N steps of S seconds with progress after each — for watching runs."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field

from executors.base import Executor, JobContext, JobResult


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=10, ge=1, le=10_000)
    delay: float = Field(default=1.0, ge=0, le=3600)


async def execute(job: JobContext[Config]) -> JobResult:
    """Sleep ``steps`` × ``delay`` seconds, reporting progress and keeping completed steps."""
    steps = job.config.steps
    await job.reporter.progress(0, steps, "starting")
    for step in range(1, steps + 1):
        await asyncio.sleep(job.config.delay)
        job.checkpoint({"steps_done": step, "steps": steps})
        await job.reporter.progress(step, steps, f"step {step} of {steps}")
    return JobResult(summary=f"{steps} steps done", data={"steps_done": steps, "steps": steps})


EXECUTOR = Executor(
    job_type="diag.progress",
    label="Progress",
    description="Runs N steps of S seconds, reporting progress; honours cancellation.",
    config=Config,
    execute=execute,
)
