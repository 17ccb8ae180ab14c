"""NiFi bulletins: the board as NiFi answers it, which of them are new, which matter.

``GET /flow/bulletin-board`` answers a ``BulletinBoardEntity``: ``bulletinBoard.bulletins[]``
are ``BulletinEntity`` (``id``, ``groupId``, ``sourceId``, ``timestamp``, ``nodeAddress``,
``canRead``, and when readable ``bulletin``: a ``BulletinDTO`` with ``level`` — DEBUG,
INFO, WARNING, ERROR —, ``message``, ``sourceName``, ``category``, ``sourceType``,
``timestampIso`` in 2.x). NiFi keeps bulletins five minutes. On a cluster the board merges
the connected nodes', and every node numbers its bulletins itself (from 0 again after a
restart), so "new" is judged per node.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from service.nifi.client import NifiClient
from service.nifi.errors import NifiRequestError
from service.nifi.status import as_int

# How long NiFi keeps a bulletin; a schedule looking less often misses some.
BOARD_RETENTION_SECONDS = 300


class Level(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]


_LEVEL_RANK = {level: rank for rank, level in enumerate(Level)}


@dataclass(frozen=True, slots=True)
class Bulletin:
    id: int
    node: str  # NiFi's node address; "" on a standalone instance
    level: Level | None  # None: not readable with our policies
    message: str
    source_name: str
    source_id: str
    group_id: str | None
    category: str
    timestamp: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "node": self.node or None,
            "level": self.level.value if self.level is not None else None,
            "message": self.message,
            "source_name": self.source_name,
            "source_id": self.source_id,
            "group_id": self.group_id,
            "category": self.category,
            "timestamp": self.timestamp,
        }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _bulletin(entity: Mapping[str, Any]) -> Bulletin | None:
    bulletin_id = as_int(entity.get("id"))
    if bulletin_id is None:
        return None
    dto = entity.get("bulletin")
    dto = dto if isinstance(dto, Mapping) else {}
    level = _text(dto.get("level")).upper()
    group = entity.get("groupId") or dto.get("groupId")
    return Bulletin(
        id=bulletin_id,
        node=_text(entity.get("nodeAddress") or dto.get("nodeAddress")),
        level=Level(level) if level in Level.__members__ else None,
        message=_text(dto.get("message")),
        source_name=_text(dto.get("sourceName")),
        source_id=_text(entity.get("sourceId") or dto.get("sourceId")),
        group_id=group if isinstance(group, str) else None,
        category=_text(dto.get("category")),
        timestamp=_text(dto.get("timestampIso") or entity.get("timestampIso"))
        or _text(entity.get("timestamp")),
    )


def parse_board(entity: Mapping[str, Any]) -> list[Bulletin]:
    """The bulletins of a ``BulletinBoardEntity``."""
    board = entity.get("bulletinBoard")
    items = board.get("bulletins") if isinstance(board, Mapping) else None
    if not isinstance(items, list):
        raise NifiRequestError("bulletin board answer has no bulletinBoard.bulletins")
    found = (_bulletin(item) for item in items if isinstance(item, Mapping))
    return [bulletin for bulletin in found if bulletin is not None]


async def fetch_board(client: NifiClient) -> list[Bulletin]:
    """``GET /flow/bulletin-board`` (the whole board: filters are applied here, in one
    regular-expression dialect whatever the NiFi version)."""
    body = await client.get_json("flow/bulletin-board")
    if not isinstance(body, dict):
        raise NifiRequestError(f"{client.name}: bulletin board is not an object")
    return parse_board(body)


def newer_than(
    bulletins: Sequence[Bulletin], cursor: Mapping[str, int]
) -> tuple[list[Bulletin], dict[str, int]]:
    """The bulletins past ``cursor`` (node → last id seen) and the cursor moved past
    them. A node seen first, or whose highest id is below its cursor (it restarted and
    numbers from 0 again), has every bulletin new; nodes absent now keep their place."""
    by_node: dict[str, list[Bulletin]] = {}
    for bulletin in bulletins:
        by_node.setdefault(bulletin.node, []).append(bulletin)
    fresh: list[Bulletin] = []
    moved = dict(cursor)
    for node, items in by_node.items():
        top = max(b.id for b in items)
        last = cursor.get(node)
        if last is None or top < last:
            fresh.extend(items)
            moved[node] = top
        else:
            fresh.extend(b for b in items if b.id > last)
            moved[node] = max(last, top)
    fresh.sort(key=lambda b: (b.timestamp, b.node, b.id))
    return fresh, moved


@dataclass(frozen=True, slots=True)
class BulletinFilter:
    """Which bulletins are reported: at least ``min_level``, from a source whose name
    ``source_name`` (a regular expression) finds, in one of ``group_ids``."""

    min_level: Level = Level.WARNING
    source_name: str | None = None
    group_ids: frozenset[str] | None = None

    def keeps(self, bulletin: Bulletin) -> bool:
        if bulletin.level is None or bulletin.level.rank < self.min_level.rank:
            return False
        if (
            self.source_name is not None
            and re.search(self.source_name, bulletin.source_name) is None
        ):
            return False
        return self.group_ids is None or bulletin.group_id in self.group_ids


def level_counts(bulletins: Iterable[Bulletin]) -> dict[str, int]:
    counts = {level.value: 0 for level in Level}
    for bulletin in bulletins:
        if bulletin.level is not None:
            counts[bulletin.level.value] += 1
    return counts
