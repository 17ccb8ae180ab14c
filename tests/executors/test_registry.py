"""Invariant 1: one registration per job type, and arq knows only dispatch_job + crons."""

from __future__ import annotations

import pkgutil

import pytest

import executors
from executors import REGISTRY, build_registry, get_executor, job_types
from executors.base import Executor
from service.errors import UnknownJobType
from service.keyspace import KeySpace
from service.queue.transport import DISPATCH_FUNCTION
from service.worker.app import build_worker
from tests.conftest import make_settings

NOT_EXECUTORS = {"base", "services"}


def test_every_executor_module_is_registered_once() -> None:
    modules = {
        info.name
        for info in pkgutil.iter_modules(executors.__path__)
        if info.name not in NOT_EXECUTORS
    }
    registered_modules = {
        executor.execute.__module__.removeprefix("executors.") for executor in job_types()
    }
    assert modules == registered_modules
    names = [executor.job_type for executor in job_types()]
    assert len(names) == len(set(names))
    for name, executor in REGISTRY.items():
        assert name == executor.job_type or name in executor.aliases


def test_duplicate_names_are_refused() -> None:
    echo = get_executor("diag.echo")
    with pytest.raises(ValueError, match="registered twice"):
        build_registry([echo, echo])
    clash = Executor(
        job_type="diag.other",
        label="x",
        description="x",
        config=echo.config,
        execute=echo.execute,
        aliases=("diag.echo",),
    )
    with pytest.raises(ValueError, match=r"'diag\.echo' is registered twice"):
        build_registry([echo, clash])


def test_unknown_job_type_names_the_valid_ones() -> None:
    with pytest.raises(UnknownJobType) as raised:
        get_executor("nope")
    assert raised.value.details == {"valid_types": sorted(REGISTRY)}


async def test_arq_knows_only_dispatch_job_and_the_crons() -> None:
    settings = make_settings()
    job_worker = build_worker(settings, settings.queues.default, handle_signals=False)
    assert set(job_worker.functions) == {DISPATCH_FUNCTION}
    cron_worker = build_worker(settings, settings.queues.scheduler, handle_signals=False)
    cron = KeySpace(settings.redis.prefix).cron
    assert set(cron_worker.functions) == {
        DISPATCH_FUNCTION,
        cron("scheduler_tick"),
        cron("purge_finished_runs"),
        cron("reap_lost_runs"),
        cron("reconcile_pending_runs"),
        cron("notify"),
    }
