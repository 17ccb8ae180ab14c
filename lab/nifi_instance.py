"""One simulated NiFi node: its canvas, credentials, latency and injected failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lab.nifi_topology import LabFlow

DEFAULT_VERSION = "1.28.1"


class FailureMode(StrEnum):
    """What an instance does instead of answering normally."""

    NONE = "none"
    DOWN = "down"  # 503, as a proxy in front of a dead node answers
    HANG = "hang"  # never answers; the client's read timeout fires
    ERROR = "error"  # 500
    UNAUTHORIZED = "unauthorized"  # 401 even with a valid token


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
