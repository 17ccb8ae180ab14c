"""The job types opsjobs knows: one explicit table, no import side effects.

``REGISTRY`` is the only list of job types (invariant 1). A duplicate name or alias is an
error at import, never a silent override.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from executors import (
    backup,
    cache_devices,
    check_bulletins,
    check_cluster,
    check_process_group,
    check_queues,
    diag_echo,
    diag_fail,
    diag_progress,
    run_commands,
)
from executors.base import Executor
from service.errors import UnknownJobType

AnyExecutor = Executor[Any]


def build_registry(executors: Iterable[AnyExecutor]) -> dict[str, AnyExecutor]:
    """Map job type names (and aliases) to executors; refuses any name twice."""
    registry: dict[str, AnyExecutor] = {}
    for executor in executors:
        for name in (executor.job_type, *executor.aliases):
            if name in registry:
                raise ValueError(f"job type {name!r} is registered twice")
            registry[name] = executor
    return registry


REGISTRY: dict[str, AnyExecutor] = build_registry(
    [
        check_queues.EXECUTOR,
        check_process_group.EXECUTOR,
        check_cluster.EXECUTOR,
        check_bulletins.EXECUTOR,
        diag_echo.EXECUTOR,
        diag_progress.EXECUTOR,
        diag_fail.EXECUTOR,
        run_commands.EXECUTOR,
        backup.EXECUTOR,
        cache_devices.EXECUTOR,
    ]
)


def job_types() -> list[AnyExecutor]:
    """Each executor once (aliases folded), sorted by job type."""
    unique = {executor.job_type: executor for executor in REGISTRY.values()}
    return [unique[name] for name in sorted(unique)]


def get_executor(job_type: str) -> AnyExecutor:
    """The executor for a job type or alias; ``UnknownJobType`` lists the valid ones."""
    try:
        return REGISTRY[job_type]
    except KeyError:
        valid = sorted(REGISTRY)
        raise UnknownJobType(
            f"unknown job_type {job_type!r}; valid types: {', '.join(valid)}",
            details={"valid_types": valid},
        ) from None
