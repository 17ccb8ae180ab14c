"""One simulated NiFi node: its canvas, credentials, latency, injected failures, its
state in a cluster and its bulletins."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from lab.nifi_bulletins import BulletinLog
from lab.nifi_topology import LabFlow

if TYPE_CHECKING:
    from lab.nifi_cluster import LabCluster

DEFAULT_VERSION = "1.28.1"


class FailureMode(StrEnum):
    """What an instance does instead of answering normally."""

    NONE = "none"
    DOWN = "down"  # 503, as a proxy in front of a dead node answers
    HANG = "hang"  # never answers; the client's read timeout fires
    ERROR = "error"  # 500
    UNAUTHORIZED = "unauthorized"  # 401 even with a valid token


class NodeState(StrEnum):
    """NiFi's ``NodeConnectionState`` names."""

    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    DISCONNECTING = "DISCONNECTING"
    DISCONNECTED = "DISCONNECTED"
    OFFLOADING = "OFFLOADING"
    OFFLOADED = "OFFLOADED"


@dataclass(eq=False)
class LabInstance:
    """One simulated NiFi node. Cluster members share one :class:`LabFlow`."""

    name: str
    flow: LabFlow
    users: dict[str, str] = field(default_factory=dict)
    oidc: bool = False
    anonymous: bool = True
    latency: float = 0.0
    version: str = DEFAULT_VERSION
    numeric_queue_fields: bool = True
    failure: FailureMode = FailureMode.NONE
    failures_left: int | None = None
    request_count: int = 0
    login_count: int = 0
    served_at: str | None = None  # API root, set by the lab when it serves the instance
    cluster: LabCluster | None = None
    state: NodeState = NodeState.CONNECTED
    # While set (and while CONNECTING) the node answers 409, as NiFi does while its flow
    # controller loads the flow.
    initializing: bool = False
    node_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    active_threads: int = 2
    heartbeat_age: float = 1.0
    bulletins: BulletinLog = field(default_factory=BulletinLog)

    @property
    def address(self) -> str:
        """The node's address as the cluster reports it (its name in the lab)."""
        return self.name

    @property
    def connected(self) -> bool:
        """Part of its cluster's view (a standalone instance always is)."""
        return self.cluster is None or self.state is NodeState.CONNECTED

    @property
    def not_ready(self) -> bool:
        return self.initializing or self.state is NodeState.CONNECTING

    @property
    def url(self) -> str:
        """The API root (``…/nifi-api``) clients use; known once the lab has started."""
        if self.served_at is None:
            raise RuntimeError(f"lab instance {self.name!r} has no URL before the lab starts")
        return self.served_at

    def fail(self, mode: FailureMode, *, times: int | None = None) -> None:
        """Fail the next ``times`` requests (all, until :meth:`recover`, when None)."""
        self.failure = mode
        self.failures_left = times

    def recover(self) -> None:
        """Answer normally again."""
        self.failure = FailureMode.NONE
        self.failures_left = None

    def next_failure(self) -> FailureMode:
        """The failure to apply to the request now arriving (consumes one of ``times``)."""
        mode = self.failure
        if mode is FailureMode.NONE:
            return mode
        if self.failures_left is not None:
            self.failures_left -= 1
            if self.failures_left <= 0:
                self.recover()
        return mode
