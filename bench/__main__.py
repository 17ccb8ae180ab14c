"""``make bench``: every benchmark, each against a baseline measured in the same invocation."""

from __future__ import annotations

import asyncio
import logging
import sys

from bench import alerts, api, devices, nifi, pipeline, redis_restart, scheduler
from bench.harness import bench_stores
from service.keyspace import ForeignKeysError


async def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    try:
        return await run_all()
    except ForeignKeysError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2


async def run_all() -> int:
    results: dict[str, bool] = {}
    async with bench_stores() as stores:
        results["run pipeline"] = await pipeline.run(stores)
        results["run pipeline across a Redis restart"] = await redis_restart.run(stores)
        results["alert latency"] = await alerts.run(stores)
        results["scheduler tick"] = await scheduler.run(stores)
        results["API"] = await api.run(stores)
        results["NiFi fan-out and result size"] = await nifi.run(stores)
        results["device fan-out and worker memory"] = await devices.run(stores)
    print()
    for name, met in results.items():
        print(f"{name}: {'target met' if met else 'TARGET MISSED'}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
