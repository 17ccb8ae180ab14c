"""``cache_devices``: refresh the Redis cache of Nautobot's device records.

A system job fired by the scheduler-queue workers every ``[nautobot] cache_interval``
seconds (and runnable on demand). Resolution and previews take device records from the
cache while it is fresh and say so.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from executors.base import Executor, JobContext, JobResult
from service.devices.targeting import DeviceResolver


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


async def execute(job: JobContext[Config]) -> JobResult:
    """List every device in Nautobot and replace the cache with them."""
    services = job.services
    await job.reporter.progress(0, 1, "listing devices in Nautobot")
    resolver = DeviceResolver(services.nautobot, services.redis, services.settings.nautobot)
    count = await resolver.refresh_cache()
    ttl = services.settings.nautobot.cache_ttl
    await job.reporter.progress(1, 1, f"{count} device(s) cached")
    return JobResult(
        summary=f"{count} device(s) cached for {ttl:g} s",
        data={"devices_cached": count, "ttl_seconds": ttl},
    )


EXECUTOR = Executor(
    job_type="cache_devices",
    label="Cache devices",
    description="Refreshes the cache of Nautobot device records used by resolution and previews.",
    config=Config,
    execute=execute,
)
