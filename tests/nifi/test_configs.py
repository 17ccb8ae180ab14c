"""Template configuration of the NiFi job types: defaults, 0/false honoured, validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.nifi.configs import CheckProcessGroupConfig, CheckQueuesConfig
from service.nifi.process_group_check import ExpectedStatus
from service.nifi.queue_check import QueueMode, QueueThresholds


def test_check_queues_defaults_are_the_origin_s() -> None:
    config = CheckQueuesConfig()
    assert config.thresholds() == QueueThresholds(
        mode=QueueMode.COUNT,
        count_yellow=1000,
        count_red=10000,
        bytes_yellow_mb=10,
        bytes_red_mb=100,
    )
    assert config.cluster_ids is None
    assert config.include_all_connections is False


def test_zero_thresholds_are_kept() -> None:
    config = CheckQueuesConfig(count_yellow=0, count_red=0, bytes_yellow_mb=0, bytes_red_mb=0)
    assert config.thresholds().to_dict() == {
        "mode": "count",
        "count_yellow": 0,
        "count_red": 0,
        "bytes_yellow_mb": 0,
        "bytes_red_mb": 0,
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"count_yellow": 10, "count_red": 5}, "count_yellow must be <= count_red"),
        ({"bytes_yellow_mb": 200}, "bytes_yellow_mb must be <= bytes_red_mb"),
        ({"count_red": -1}, "greater than or equal to 0"),
        ({"mode": "sum"}, "'count', 'bytes', 'both' or 'percent'"),
        ({"percent_yellow": 95}, "percent_yellow must be <= percent_red"),
        ({"percent_red": 101}, "less than or equal to 100"),
        ({"scope": "rack"}, "'cluster' or 'node'"),
        ({"max_heartbeat_age": 0}, "greater than 0"),
        ({"cluster_ids": []}, "at least 1 item"),
        ({"concurrency": 0}, "greater than or equal to 1"),
        ({"bytes_red_mb": float("inf")}, "finite number"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_check_queues_validation(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CheckQueuesConfig.model_validate(data)


def test_origin_names_are_accepted() -> None:
    config = CheckQueuesConfig.model_validate(
        {
            "check_queues_mode": "both",
            "check_queues_count_yellow": 0,
            "check_queues_bytes_red": 50,
            "nifi_cluster_ids": [3, "prod"],
        }
    )
    assert (config.mode, config.count_yellow, config.bytes_red_mb) == (QueueMode.BOTH, 0, 50)
    assert config.cluster_ids == ["3", "prod"]


def test_one_setting_under_two_names_is_refused() -> None:
    with pytest.raises(ValidationError, match="given twice"):
        CheckQueuesConfig.model_validate({"count_red": 5, "check_queues_count_red": 6})


def test_check_process_group_defaults() -> None:
    config = CheckProcessGroupConfig(cluster_id="c", process_group_id="root")
    assert config.check_children is True
    assert config.recursive is False
    assert config.expected_status is ExpectedStatus.RUNNING


def test_explicit_false_children_is_honoured_and_status_any_case() -> None:
    config = CheckProcessGroupConfig.model_validate(
        {
            "check_progress_group_nifi_cluster_id": 7,
            "check_progress_group_process_group_id": " pg-1 ",
            "check_progress_group_check_children": False,
            "check_progress_group_expected_status": "stopped",
        }
    )
    assert (config.cluster_id, config.process_group_id) == ("7", "pg-1")
    assert config.check_children is False
    assert config.expected_status is ExpectedStatus.STOPPED


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"process_group_id": "x"}, "cluster_id"),
        ({"cluster_id": "c"}, "process_group_id"),
        ({"cluster_id": "c", "process_group_id": " "}, "at least 1 character"),
        ({"cluster_id": "c", "process_group_id": "x", "expected_status": "Paused"}, "Running"),
        (
            {"cluster_id": "c", "process_group_id": "x", "check_children": False, "recursive": 1},
            "recursive needs check_children",
        ),
    ],
)
def test_check_process_group_validation(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CheckProcessGroupConfig.model_validate(data)
