"""Process-group rules as pure functions: four expected statuses, zero-counter rules."""

from __future__ import annotations

import pytest

from service.nifi.process_group_check import (
    ExpectedStatus,
    evaluate_group,
    evaluate_report,
)
from service.nifi.status import ProcessGroupState


def group(
    *, running: int = 0, stopped: int = 0, disabled: int = 0, stale: int = 0, invalid: int = 0
) -> ProcessGroupState:
    return ProcessGroupState(
        id="pg",
        name="PG",
        parent_id="root",
        running=running,
        stopped=stopped,
        disabled=disabled,
        invalid=invalid,
        stale=stale,
    )


@pytest.mark.parametrize(
    ("expected", "state", "violations"),
    [
        (ExpectedStatus.RUNNING, group(running=5), ()),
        (ExpectedStatus.RUNNING, group(running=5, invalid=3), ()),
        (ExpectedStatus.RUNNING, group(running=5, stopped=1), ("stopped_count",)),
        (
            ExpectedStatus.RUNNING,
            group(stale=1, stopped=1, disabled=1),
            ("stale_count", "stopped_count", "disabled_count"),
        ),
        (ExpectedStatus.STOPPED, group(stopped=5), ()),
        (
            ExpectedStatus.STOPPED,
            group(running=1, stale=1, disabled=1),
            ("running_count", "stale_count", "disabled_count"),
        ),
        (ExpectedStatus.DISABLED, group(disabled=5), ()),
        (
            ExpectedStatus.DISABLED,
            group(running=1, stale=1, stopped=1),
            ("running_count", "stale_count", "stopped_count"),
        ),
        (ExpectedStatus.ENABLED, group(running=1, stopped=1, stale=1), ()),
        (ExpectedStatus.ENABLED, group(disabled=2), ("disabled_count",)),
    ],
)
def test_zero_counter_rules(
    expected: ExpectedStatus, state: ProcessGroupState, violations: tuple[str, ...]
) -> None:
    verdict = evaluate_group(state, expected)
    assert verdict.violations == violations
    assert verdict.passed is (not violations)


def test_one_failing_child_fails_the_report() -> None:
    children = [(group(running=1), "/a"), (group(stopped=1), "/b")]
    report = evaluate_report(
        cluster_id="c",
        answered_by="n1",
        expected=ExpectedStatus.RUNNING,
        group=group(running=2),
        group_path="/",
        children=children,
    )
    assert report.group.passed
    assert not report.passed
    assert report.outcome == "critical"
    data = report.to_dict()
    assert (data["children_count"], data["children_failed"]) == (2, 1)
    assert data["children"][1]["violations"] == ["stopped_count"]
    assert data["counters"] == {
        "running_count": 2,
        "stopped_count": 0,
        "disabled_count": 0,
        "stale_count": 0,
        "invalid_count": 0,
    }


def test_without_children_check_there_is_no_children_key() -> None:
    report = evaluate_report(
        cluster_id="c",
        answered_by="n1",
        expected=ExpectedStatus.STOPPED,
        group=group(stopped=3),
        group_path=None,
        children=None,
    )
    assert (report.passed, report.outcome) == (True, "ok")
    assert "children" not in report.to_dict()
