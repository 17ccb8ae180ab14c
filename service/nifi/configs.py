"""Template configuration of the NiFi job types, validated when a template is saved
and again for parameter overrides.

Every field has an explicit default and ``0``/``false`` are honoured. The origin's
column/parameter names (``check_queues_count_yellow``, ``nifi_cluster_ids``,
``check_progress_group_expected_status`` …) are accepted as input; giving one setting
under two names is an error rather than a silent pick.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from service.access.resources import ResourceKind, ResourceRef
from service.nifi.bulletins import BulletinFilter, Level
from service.nifi.health_check import DEFAULT_MAX_HEARTBEAT_AGE
from service.nifi.process_group_check import ExpectedStatus
from service.nifi.queue_check import QueueMode, QueueScope, QueueThresholds

MAX_CONCURRENCY = 256
# Heartbeats come every 5 s by default; NiFi disconnects a node after 8 missed.
MaxHeartbeatAge = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]
Percent = Annotated[int, Field(ge=0, le=100)]


def _id_to_str(value: Any) -> Any:
    # Cluster ids may arrive as database integers or as string labels.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


ClusterId = Annotated[
    str,
    BeforeValidator(_id_to_str),
    StringConstraints(strip_whitespace=True, min_length=1),
]
#: The clusters a check looks at; left out (None), every cluster — which is what it uses.
ClusterIds = Annotated[
    list[ClusterId] | None, ResourceRef(ResourceKind.NIFI_CLUSTER, null_means_all=True)
]


def _rename_legacy_keys(data: Any, legacy: Mapping[str, str]) -> Any:
    if not isinstance(data, Mapping):
        return data
    renamed: dict[str, Any] = {}
    for key, value in data.items():
        name = legacy.get(key, key)
        if name in renamed:
            raise ValueError(f"{name!r} is given twice (also as {key!r})")
        renamed[name] = value
    return renamed


_QUEUES_LEGACY = {
    "check_queues_mode": "mode",
    "check_queues_count_yellow": "count_yellow",
    "check_queues_count_red": "count_red",
    "check_queues_bytes_yellow": "bytes_yellow_mb",
    "check_queues_bytes_red": "bytes_red_mb",
    "nifi_cluster_ids": "cluster_ids",
}


class CheckQueuesConfig(BaseModel):
    """``check_queues``: connection backlog traffic lights on NiFi clusters.

    ``cluster_ids`` ``None`` means every cluster; an empty list is refused so that
    "all" is never the accidental result of an empty selection. Mode ``percent`` judges
    NiFi's ``percentUseCount``/``percentUseBytes`` against ``percent_yellow``/``percent_red``;
    ``scope: node`` judges every node's own view (``nodewise``) and names the worst node.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: QueueMode = QueueMode.COUNT
    count_yellow: int = Field(default=1000, ge=0)
    count_red: int = Field(default=10000, ge=0)
    bytes_yellow_mb: float = Field(default=10.0, ge=0, allow_inf_nan=False)
    bytes_red_mb: float = Field(default=100.0, ge=0, allow_inf_nan=False)
    percent_yellow: Percent = 70
    percent_red: Percent = 90
    scope: QueueScope = QueueScope.CLUSTER
    cluster_ids: ClusterIds = Field(default=None, min_length=1)
    include_all_connections: bool = False
    concurrency: int = Field(default=10, ge=1, le=MAX_CONCURRENCY)
    max_heartbeat_age: MaxHeartbeatAge = DEFAULT_MAX_HEARTBEAT_AGE

    @model_validator(mode="before")
    @classmethod
    def _legacy_names(cls, data: Any) -> Any:
        return _rename_legacy_keys(data, _QUEUES_LEGACY)

    @model_validator(mode="after")
    def _yellow_not_above_red(self) -> CheckQueuesConfig:
        if self.count_yellow > self.count_red:
            raise ValueError("count_yellow must be <= count_red")
        if self.bytes_yellow_mb > self.bytes_red_mb:
            raise ValueError("bytes_yellow_mb must be <= bytes_red_mb")
        if self.percent_yellow > self.percent_red:
            raise ValueError("percent_yellow must be <= percent_red")
        return self

    def thresholds(self) -> QueueThresholds:
        """The thresholds as the evaluation takes them."""
        return QueueThresholds(
            mode=self.mode,
            count_yellow=self.count_yellow,
            count_red=self.count_red,
            bytes_yellow_mb=self.bytes_yellow_mb,
            bytes_red_mb=self.bytes_red_mb,
            percent_yellow=self.percent_yellow,
            percent_red=self.percent_red,
        )


_PROCESS_GROUP_LEGACY = {
    "nifi_cluster_id": "cluster_id",
    "check_progress_group_nifi_cluster_id": "cluster_id",
    "check_progress_group_process_group_id": "process_group_id",
    "check_progress_group_process_group_path": "process_group_path",
    "check_progress_group_check_children": "check_children",
    "check_progress_group_expected_status": "expected_status",
}


class CheckProcessGroupConfig(BaseModel):
    """``check_process_group`` (alias ``check_progress_group``): a process group's
    state matches the expected status.

    ``check_children`` checks the direct children as the origin does; with
    ``recursive`` every descendant is checked.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster_id: Annotated[ClusterId, ResourceRef(ResourceKind.NIFI_CLUSTER)]
    process_group_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    process_group_path: str | None = None
    check_children: bool = True
    recursive: bool = False
    expected_status: ExpectedStatus = ExpectedStatus.RUNNING

    @model_validator(mode="before")
    @classmethod
    def _legacy_names(cls, data: Any) -> Any:
        return _rename_legacy_keys(data, _PROCESS_GROUP_LEGACY)

    @field_validator("expected_status", mode="before")
    @classmethod
    def _status_any_case(cls, value: Any) -> Any:
        if isinstance(value, str):
            for status in ExpectedStatus:
                if status.value.lower() == value.strip().lower():
                    return status
        return value

    @model_validator(mode="after")
    def _recursive_needs_children(self) -> CheckProcessGroupConfig:
        if self.recursive and not self.check_children:
            raise ValueError("recursive needs check_children")
        return self


class CheckClusterConfig(BaseModel):
    """``check_cluster``: connected and total nodes, each node's state and heartbeat.

    Critical when a node is out of the cluster (disconnected, disconnecting, offloading,
    offloaded) or no member answers; warning when one is connecting or its heartbeat is
    older than ``max_heartbeat_age`` seconds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster_ids: ClusterIds = Field(default=None, min_length=1)
    concurrency: int = Field(default=10, ge=1, le=MAX_CONCURRENCY)
    max_heartbeat_age: MaxHeartbeatAge = DEFAULT_MAX_HEARTBEAT_AGE


MAX_REPORTED_BULLETINS = 1000


class CheckBulletinsConfig(BaseModel):
    """``check_bulletins``: bulletins posted since the schedule's previous run.

    Kept: at least ``min_level`` (DEBUG, INFO, WARNING, ERROR), from a source whose
    name the regular expression ``source_name`` finds, in one of ``group_ids`` (the
    process group holding the source). Critical with an ERROR, warning with a WARNING.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cluster_ids: ClusterIds = Field(default=None, min_length=1)
    concurrency: int = Field(default=10, ge=1, le=MAX_CONCURRENCY)
    min_level: Level = Level.WARNING
    source_name: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    group_ids: list[Annotated[str, StringConstraints(min_length=1)]] | None = Field(
        default=None, min_length=1
    )
    max_reported: int = Field(default=100, ge=1, le=MAX_REPORTED_BULLETINS)

    @field_validator("min_level", mode="before")
    @classmethod
    def _level_any_case(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("source_name")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    def selection(self) -> BulletinFilter:
        return BulletinFilter(
            min_level=self.min_level,
            source_name=self.source_name,
            group_ids=frozenset(self.group_ids) if self.group_ids else None,
        )
