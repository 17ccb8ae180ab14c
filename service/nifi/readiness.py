"""Which cluster members recently said they were not ready, and until when to ask the
others first.

A node answering 409 (its flow controller initializing, a cluster-state conflict) or
503, or one that is not connected to its cluster, is backed off: for ``base`` seconds,
doubling with each consecutive refusal up to ``cap``. One answer clears it. The state
lives in the worker's client pool, so every run of the worker benefits from it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackOff:
    until: float
    refusals: int
    reason: str


class NodeReadiness:
    """Back-off state per member name; times come from the caller's clock."""

    def __init__(self, *, base: float = 15.0, cap: float = 300.0) -> None:
        if base <= 0 or cap < base:
            raise ValueError("back-off needs 0 < base <= cap")
        self._base = base
        self._cap = cap
        self._nodes: dict[str, BackOff] = {}

    def not_ready(self, member: str, reason: str, now: float) -> BackOff:
        """Record a refusal; returns the new back-off."""
        previous = self._nodes.get(member)
        refusals = 1 if previous is None else previous.refusals + 1
        delay = min(self._cap, self._base * 2.0 ** (refusals - 1))
        backoff = BackOff(until=now + delay, refusals=refusals, reason=reason)
        self._nodes[member] = backoff
        return backoff

    def ready(self, member: str) -> None:
        """The member answered: forget its refusals."""
        self._nodes.pop(member, None)

    def backed_off(self, member: str, now: float) -> BackOff | None:
        """The member's back-off while it lasts."""
        backoff = self._nodes.get(member)
        return backoff if backoff is not None and now < backoff.until else None
