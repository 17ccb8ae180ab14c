"""Process-group state checks: pure evaluation of component counters.

For each expected status some counters must be zero (the origin's rules):

========  ==========================================
Running   stale_count, stopped_count, disabled_count
Stopped   running_count, stale_count, disabled_count
Disabled  running_count, stale_count, stopped_count
Enabled   disabled_count
========  ==========================================

``stale_count`` is NiFi's version-control staleness (a newer flow version exists in
the registry), so a stale versioned group fails ``Running``; ``invalid_count`` is
reported but not checked, as in the origin.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from service.nifi.errors import MemberFailure
from service.nifi.status import ProcessGroupState

Outcome = Literal["ok", "critical"]


class ExpectedStatus(StrEnum):
    RUNNING = "Running"
    STOPPED = "Stopped"
    DISABLED = "Disabled"
    ENABLED = "Enabled"


MUST_BE_ZERO: dict[ExpectedStatus, tuple[str, ...]] = {
    ExpectedStatus.RUNNING: ("stale_count", "stopped_count", "disabled_count"),
    ExpectedStatus.STOPPED: ("running_count", "stale_count", "disabled_count"),
    ExpectedStatus.DISABLED: ("running_count", "stale_count", "stopped_count"),
    ExpectedStatus.ENABLED: ("disabled_count",),
}


def counters_of(group: ProcessGroupState) -> dict[str, int]:
    """The counters as reported: the origin's four plus ``invalid_count``."""
    return {
        "running_count": group.running,
        "stopped_count": group.stopped,
        "disabled_count": group.disabled,
        "stale_count": group.stale,
        "invalid_count": group.invalid,
    }


@dataclass(frozen=True, slots=True)
class GroupVerdict:
    id: str
    name: str
    path: str | None
    counters: dict[str, int]
    violations: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "passed": self.passed,
            "counters": dict(self.counters),
            "violations": list(self.violations),
        }


def evaluate_group(
    group: ProcessGroupState, expected: ExpectedStatus, path: str | None = None
) -> GroupVerdict:
    """Which of the counters that must be zero for ``expected`` are not."""
    counters = counters_of(group)
    violations = tuple(name for name in MUST_BE_ZERO[expected] if counters[name] > 0)
    return GroupVerdict(group.id, group.name, path, counters, violations)


@dataclass(frozen=True, slots=True)
class ProcessGroupReport:
    """The verdict on a group and (when checked) its children or descendants."""

    cluster_id: str
    answered_by: str
    expected_status: ExpectedStatus
    group: GroupVerdict
    check_children: bool
    recursive: bool
    children: tuple[GroupVerdict, ...] = ()
    unavailable_members: tuple[str, ...] = ()
    passed_over: tuple[MemberFailure, ...] = ()

    @property
    def passed(self) -> bool:
        return self.group.passed and all(child.passed for child in self.children)

    @property
    def outcome(self) -> Outcome:
        return "ok" if self.passed else "critical"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "passed": self.passed,
            "cluster_id": self.cluster_id,
            "answered_by": self.answered_by,
            "process_group_id": self.group.id,
            "process_group_name": self.group.name,
            "process_group_path": self.group.path,
            "expected_status": self.expected_status.value,
            "check_children": self.check_children,
            "recursive": self.recursive,
            "unavailable_members": list(self.unavailable_members),
            "skipped": [member.to_dict() for member in self.passed_over],
            "counters": dict(self.group.counters),
            "violations": list(self.group.violations),
        }
        if self.check_children:
            data["children"] = [child.to_dict() for child in self.children]
            data["children_count"] = len(self.children)
            data["children_failed"] = sum(1 for child in self.children if not child.passed)
        return data


def evaluate_report(
    *,
    cluster_id: str,
    answered_by: str,
    expected: ExpectedStatus,
    group: ProcessGroupState,
    group_path: str | None,
    children: Iterable[tuple[ProcessGroupState, str | None]] | None,
    recursive: bool = False,
    unavailable_members: tuple[str, ...] = (),
    passed_over: tuple[MemberFailure, ...] = (),
) -> ProcessGroupReport:
    """Evaluate a group and, when ``children`` is given (``(state, path)`` pairs), each
    child; the check passes only when all of them pass."""
    return ProcessGroupReport(
        cluster_id=cluster_id,
        answered_by=answered_by,
        expected_status=expected,
        group=evaluate_group(group, expected, group_path),
        check_children=children is not None,
        recursive=recursive,
        children=tuple(evaluate_group(c, expected, p) for c, p in children or ()),
        unavailable_members=unavailable_members,
        passed_over=passed_over,
    )
