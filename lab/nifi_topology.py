"""The canvas a simulated NiFi serves: nested process groups, connections with queue
depths and component counters. Generated from a seed or built by hand, and changed
at runtime by tests and benchmarks."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

ROOT_ALIAS = "root"
DEFAULT_ROOT_NAME = "NiFi Flow"
# NiFi's default back pressure per connection: 10,000 flow files or 1 GB.
BACK_PRESSURE_OBJECTS = 10_000
BACK_PRESSURE_BYTES = 1024**3


@dataclass(eq=False, slots=True)
class LabConnection:
    id: str
    name: str
    group_id: str
    source_id: str
    source_name: str
    destination_id: str
    destination_name: str
    flow_files: int = 0
    bytes: int = 0
    back_pressure_objects: int = BACK_PRESSURE_OBJECTS
    back_pressure_bytes: int = BACK_PRESSURE_BYTES
    # Queue depth per cluster node (member name → flow files, bytes); when empty the
    # connection's totals are spread evenly over the cluster's members.
    node_queues: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueueValues:
    """What a connection status snapshot says about one queue."""

    flow_files: int
    bytes: int
    percent_count: int | None
    percent_bytes: int | None


def _utilization(used: int, threshold: int) -> int | None:
    # NiFi: min(100, Math.round(used / threshold * 100)); no threshold, no figure.
    if threshold <= 0:
        return None
    return min(100, math.floor(used * 100 / threshold + 0.5))


def queue_values(connection: LabConnection, flow_files: int, size: int) -> QueueValues:
    """The snapshot values of ``connection`` holding ``flow_files``/``size`` bytes."""
    return QueueValues(
        flow_files,
        size,
        _utilization(flow_files, connection.back_pressure_objects),
        _utilization(size, connection.back_pressure_bytes),
    )


def total_values(connection: LabConnection) -> QueueValues:
    """A standalone instance's view: the connection's whole queue."""
    return queue_values(connection, connection.flow_files, connection.bytes)


@dataclass(frozen=True, slots=True)
class GroupCounts:
    """Counters as NiFi reports them for a group: components of the group and all its
    descendants, and how many descendant groups are stale under version control."""

    running: int
    stopped: int
    disabled: int
    invalid: int
    stale: int


@dataclass(eq=False, slots=True)
class LabProcessGroup:
    id: str
    name: str
    parent: LabProcessGroup | None
    children: list[LabProcessGroup] = field(default_factory=list)
    connections: list[LabConnection] = field(default_factory=list)
    running: int = 0
    stopped: int = 0
    disabled: int = 0
    invalid: int = 0
    stale: bool = False

    @property
    def parent_id(self) -> str | None:
        return self.parent.id if self.parent is not None else None

    def walk(self) -> Iterator[LabProcessGroup]:
        """This group and every descendant, depth first."""
        stack = [self]
        while stack:
            group = stack.pop()
            yield group
            stack.extend(reversed(group.children))

    def counts(self) -> GroupCounts:
        """The counters NiFi reports for this group (see :class:`GroupCounts`)."""
        running = stopped = disabled = invalid = stale = 0
        for group in self.walk():
            running += group.running
            stopped += group.stopped
            disabled += group.disabled
            invalid += group.invalid
            if group is not self and group.stale:
                stale += 1
        return GroupCounts(running, stopped, disabled, invalid, stale)


class LabFlow:
    """A canvas. Cluster members share one flow, as NiFi replicates it."""

    def __init__(
        self,
        *,
        root_name: str = DEFAULT_ROOT_NAME,
        root_id: str | None = None,
        seed: int | None = None,
    ) -> None:
        self._rng = random.Random(seed)
        self.root = LabProcessGroup(id=root_id or self._new_id(), name=root_name, parent=None)
        self.groups: dict[str, LabProcessGroup] = {self.root.id: self.root}
        self.connections: dict[str, LabConnection] = {}

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def group(self, group_id: str) -> LabProcessGroup | None:
        """The group with ``group_id``; ``root`` names the root group as in NiFi."""
        return self.root if group_id == ROOT_ALIAS else self.groups.get(group_id)

    def _require_group(self, group_id: str) -> LabProcessGroup:
        group = self.group(group_id)
        if group is None:
            raise KeyError(f"no process group {group_id!r}")
        return group

    def add_group(
        self,
        name: str,
        parent_id: str = ROOT_ALIAS,
        *,
        group_id: str | None = None,
        running: int = 0,
        stopped: int = 0,
        disabled: int = 0,
        invalid: int = 0,
        stale: bool = False,
    ) -> LabProcessGroup:
        """Add a process group below ``parent_id`` with its own component counters."""
        parent = self._require_group(parent_id)
        group = LabProcessGroup(
            id=group_id or self._new_id(),
            name=name,
            parent=parent,
            running=running,
            stopped=stopped,
            disabled=disabled,
            invalid=invalid,
            stale=stale,
        )
        if group.id in self.groups:
            raise ValueError(f"duplicate process group id {group.id!r}")
        parent.children.append(group)
        self.groups[group.id] = group
        return group

    def add_connection(
        self,
        name: str,
        group_id: str = ROOT_ALIAS,
        *,
        source_name: str = "source",
        destination_name: str = "destination",
        flow_files: int = 0,
        bytes: int = 0,
        connection_id: str | None = None,
    ) -> LabConnection:
        """Add a connection between two (implicit) processors of ``group_id``."""
        group = self._require_group(group_id)
        connection = LabConnection(
            id=connection_id or self._new_id(),
            name=name,
            group_id=group.id,
            source_id=self._new_id(),
            source_name=source_name,
            destination_id=self._new_id(),
            destination_name=destination_name,
            flow_files=flow_files,
            bytes=bytes,
        )
        if connection.id in self.connections:
            raise ValueError(f"duplicate connection id {connection.id!r}")
        group.connections.append(connection)
        self.connections[connection.id] = connection
        return connection

    def set_queue(
        self, connection_id: str, *, flow_files: int | None = None, bytes: int | None = None
    ) -> None:
        """Change a connection's queue depth (count and/or size)."""
        connection = self.connections[connection_id]
        if flow_files is not None:
            connection.flow_files = flow_files
        if bytes is not None:
            connection.bytes = bytes

    def set_node_queue(
        self, connection_id: str, node: str, *, flow_files: int = 0, bytes: int = 0
    ) -> None:
        """Give one cluster node's share of a connection's queue; once any node has a
        share, nodes without one hold nothing."""
        self.connections[connection_id].node_queues[node] = (flow_files, bytes)

    def set_back_pressure(
        self, connection_id: str, *, objects: int | None = None, bytes: int | None = None
    ) -> None:
        """Change a connection's back-pressure thresholds (0 turns one off)."""
        connection = self.connections[connection_id]
        if objects is not None:
            connection.back_pressure_objects = objects
        if bytes is not None:
            connection.back_pressure_bytes = bytes

    def set_counts(
        self,
        group_id: str,
        *,
        running: int | None = None,
        stopped: int | None = None,
        disabled: int | None = None,
        invalid: int | None = None,
        stale: bool | None = None,
    ) -> None:
        """Change a group's own counters (its ancestors' reported counts follow)."""
        group = self._require_group(group_id)
        if running is not None:
            group.running = running
        if stopped is not None:
            group.stopped = stopped
        if disabled is not None:
            group.disabled = disabled
        if invalid is not None:
            group.invalid = invalid
        if stale is not None:
            group.stale = stale

    def path_of(self, group: LabProcessGroup) -> str:
        """The group's path as the client reports it: ``/`` for the root, otherwise
        every name from the root down (``/NiFi Flow/Ingest``)."""
        if group.parent is None:
            return "/"
        names: list[str] = []
        node: LabProcessGroup | None = group
        while node is not None:
            names.append(node.name)
            node = node.parent
        return "/" + "/".join(reversed(names))

    @classmethod
    def generate(
        cls,
        seed: int,
        *,
        groups: int = 5,
        connections: int = 20,
        max_depth: int = 3,
        max_flow_files: int = 500,
        max_bytes: int = 5 * 1024 * 1024,
        root_name: str = DEFAULT_ROOT_NAME,
    ) -> LabFlow:
        """A deterministic canvas: ``groups`` nested at most ``max_depth`` deep,
        ``connections`` spread over them (root included) with queues below the
        given maxima (green under the default thresholds), every group running."""
        flow = cls(root_name=root_name, seed=seed)
        rng = random.Random(seed)
        depth = {flow.root.id: 0}
        candidates = [flow.root]
        for index in range(groups):
            parent = rng.choice(candidates)
            group = flow.add_group(f"Group {index + 1}", parent.id, running=rng.randint(1, 5))
            depth[group.id] = depth[parent.id] + 1
            if depth[group.id] < max_depth:
                candidates.append(group)
        every_group = list(flow.groups.values())
        for index in range(connections):
            group = rng.choice(every_group)
            flow.add_connection(
                f"queue-{index + 1}",
                group.id,
                source_name=f"Processor {2 * index + 1}",
                destination_name=f"Processor {2 * index + 2}",
                flow_files=rng.randrange(max_flow_files) if max_flow_files > 0 else 0,
                bytes=rng.randrange(max_bytes) if max_bytes > 0 else 0,
            )
        return flow
