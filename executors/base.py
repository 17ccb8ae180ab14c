"""The executor contract: a typed Config, ``async def execute(job) -> JobResult``.

An executor module defines ``EXECUTOR = Executor(...)``; ``executors.REGISTRY`` lists them.
Executors see the run only through :class:`JobContext`: typed config, resolved targets,
clients, a reporter, a bounded fan-out over targets and ``checkpoint`` for partial data
that must survive a failure or a cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from executors.services import Services
from service.db.models import Outcome, TargetStatus
from service.queue.leases import Slot
from service.runs.reporting import RunReporter

logger = logging.getLogger(__name__)

ConfigT = TypeVar("ConfigT", bound=BaseModel)
QueueRole = Literal["default", "devices"]

OUTCOME_SEVERITY = {Outcome.OK: 0, Outcome.UNKNOWN: 1, Outcome.WARNING: 2, Outcome.CRITICAL: 3}


def worst_outcome(outcomes: Sequence[Outcome], default: Outcome = Outcome.OK) -> Outcome:
    """The most severe outcome (critical > warning > unknown > ok)."""
    return max(outcomes, key=OUTCOME_SEVERITY.__getitem__, default=default)


class JobResult(BaseModel):
    """The result envelope every executor returns; per-target detail lives in target rows."""

    model_config = ConfigDict(frozen=True)

    outcome: Outcome = Outcome.OK
    summary: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """One thing a run acts on: a NiFi cluster, a device."""

    key: str
    name: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetResult:
    """What happened to one target; ``error`` marks the target failed, data is kept anyway."""

    outcome: Outcome = Outcome.OK
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class TargetOutcome:
    target: Target
    status: TargetStatus
    result: TargetResult


@dataclass
class JobContext(Generic[ConfigT]):
    run_id: int
    attempt: int
    job_type: str
    config: ConfigT
    targets: Sequence[Target]
    reporter: RunReporter
    services: Services
    partial: dict[str, Any] = field(default_factory=dict)
    # Targets not to act on, with why (a device in a maintenance window).
    skipped: Mapping[str, str] = field(default_factory=dict)

    def checkpoint(self, data: Mapping[str, Any]) -> None:
        """Keep partial result data; it becomes the result if the run fails or is cancelled."""
        self.partial.update(data)

    async def fan_out(
        self,
        action: Callable[[Target], Awaitable[TargetResult]],
        *,
        concurrency: int,
        targets: Sequence[Target] | None = None,
        slots: Callable[[Target], Sequence[Slot]] | None = None,
        finish_succeeded: bool = True,
    ) -> list[TargetOutcome]:
        """Run ``action`` once per target, at most ``concurrency`` at a time.

        Each target's row records its start, result and error as it happens, so a cancel
        or failure of the run keeps every finished target. An exception in one target
        fails that target only. Progress counts finished targets. ``slots`` names the
        concurrency slots (across all workers) a target's action holds; a target in
        ``skipped`` is recorded as skipped with its reason and not acted on.

        ``finish_succeeded=False`` leaves a target whose action succeeded running (its row
        keeps the action's data) for the caller to finish once the rest of its work is done
        (a backup's commit), so each target is announced finished once.
        """
        chosen = list(self.targets if targets is None else targets)
        limit = asyncio.Semaphore(max(1, concurrency))
        total = len(chosen)
        done = 0
        outcomes: list[TargetOutcome | None] = [None] * total

        async def one(index: int, target: Target) -> None:
            nonlocal done
            reason = self.skipped.get(target.key)
            if reason is not None:
                skipped = TargetResult(data={"skipped": reason})
                await self.reporter.target_finished(
                    target.key,
                    status=TargetStatus.SKIPPED,
                    outcome=None,
                    result=skipped.data,
                    error=None,
                )
                outcomes[index] = TargetOutcome(target, TargetStatus.SKIPPED, skipped)
                done += 1
                await self.reporter.progress(done, total, f"{target.name} skipped: {reason}")
                return
            held = self.services.leases.hold(slots(target)) if slots else contextlib.nullcontext()
            async with limit, held:
                await self.reporter.target_started(target.key)
                try:
                    result = await action(target)
                except Exception as exc:  # one target's failure must not end the others
                    logger.warning(
                        "target failed: %s",
                        exc,
                        extra={"run_id": self.run_id, "target": target.key},
                    )
                    result = TargetResult(outcome=Outcome.UNKNOWN, error=_describe(exc))
            # Recorded after the slot is free: the next target's work need not wait for it.
            status = TargetStatus.FAILED if result.error else TargetStatus.SUCCEEDED
            finished = status is TargetStatus.FAILED or finish_succeeded
            if not finished:
                await self.reporter.target_result(target.key, result.data)
            else:
                await self.reporter.target_finished(
                    target.key,
                    status=status,
                    outcome=result.outcome.value,
                    result=result.data,
                    error=result.error,
                )
            outcomes[index] = TargetOutcome(target=target, status=status, result=result)
            done += 1
            step = "finished" if finished else "ready"
            await self.reporter.progress(done, total, f"{target.name} {step}")

        async with asyncio.TaskGroup() as group:
            for index, target in enumerate(chosen):
                group.create_task(one(index, target))
        return [outcome for outcome in outcomes if outcome is not None]


def slot_per_target(kind: str, limit: int) -> Callable[[Target], list[Slot]]:
    """One slot of ``<kind>:<target key>`` per target, at most ``limit`` held at once."""
    return lambda target: [Slot(f"{kind}:{target.key}", limit)]


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(frozen=True)
class ResolveContext:
    """What target resolution may use (before any target row exists)."""

    run_id: int
    services: Services


@dataclass(frozen=True)
class Executor(Generic[ConfigT]):
    """One job type: its configuration model, its coroutine and how it is routed."""

    job_type: str
    label: str
    description: str
    config: type[ConfigT]
    execute: Callable[[JobContext[ConfigT]], Awaitable[JobResult]]
    queue: QueueRole = "default"
    resolve_targets: Callable[[ResolveContext, ConfigT], Awaitable[list[Target]]] | None = None
    aliases: tuple[str, ...] = ()
