"""Bulletins a simulated NiFi node posts, and its bulletin board as NiFi answers it.

Each node numbers its bulletins with a counter of its own (restarting a node starts it
again from 0), keeps them for five minutes, and filters the board as NiFi does: ``after``
an id, regular expressions searched in the source name, source id, group id and message,
and a ``limit``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# NiFi keeps bulletins in memory for five minutes.
RETENTION_SECONDS = 300.0
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True, slots=True)
class LabBulletin:
    id: int
    level: str
    message: str
    source_name: str
    source_id: str
    group_id: str | None
    category: str
    source_type: str
    timestamp: float


@dataclass
class BulletinLog:
    """One node's bulletins."""

    bulletins: list[LabBulletin] = field(default_factory=list)
    next_id: int = 0

    def post(
        self,
        *,
        level: str,
        message: str,
        source_name: str = "LogAttribute",
        source_id: str = "",
        group_id: str | None = None,
        category: str = "Log Message",
        source_type: str = "PROCESSOR",
        timestamp: float | None = None,
    ) -> LabBulletin:
        """Post a bulletin; ``level`` is one of NiFi's (DEBUG, INFO, WARNING, ERROR)."""
        if level not in LEVELS:
            raise ValueError(f"bulletin level must be one of {', '.join(LEVELS)}")
        bulletin = LabBulletin(
            id=self.next_id,
            level=level,
            message=message,
            source_name=source_name,
            source_id=source_id or f"source-{self.next_id}",
            group_id=group_id,
            category=category,
            source_type=source_type,
            timestamp=time.time() if timestamp is None else timestamp,
        )
        self.next_id += 1
        self.bulletins.append(bulletin)
        return bulletin

    def restart(self) -> None:
        """What a node restart does: bulletins gone, numbering from 0 again."""
        self.bulletins.clear()
        self.next_id = 0


def _matches(pattern: str | None, value: str | None) -> bool:
    # NiFi: a bulletin without the field is excluded once a pattern is given.
    if pattern is None:
        return True
    return value is not None and re.search(pattern, value) is not None


def select(bulletins: Iterable[LabBulletin], query: Mapping[str, str]) -> list[LabBulletin]:
    """The bulletins a board query keeps (``after``, patterns, five-minute window)."""
    after = int(query["after"]) if "after" in query else None
    oldest = time.time() - RETENTION_SECONDS
    return [
        bulletin
        for bulletin in bulletins
        if (after is None or bulletin.id > after)
        and bulletin.timestamp >= oldest
        and _matches(query.get("groupId"), bulletin.group_id)
        and _matches(query.get("message"), bulletin.message)
        and _matches(query.get("sourceName"), bulletin.source_name)
        and _matches(query.get("sourceId"), bulletin.source_id)
    ]


def _time_of_day(timestamp: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(timestamp))


def _iso(timestamp: float) -> str:
    millis = int(timestamp * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{millis:03d}Z"


def bulletin_entity(bulletin: LabBulletin, node_address: str | None) -> dict[str, Any]:
    """A ``BulletinEntity`` with its ``BulletinDTO``."""
    dto: dict[str, Any] = {
        "id": bulletin.id,
        "category": bulletin.category,
        "groupId": bulletin.group_id,
        "sourceId": bulletin.source_id,
        "sourceName": bulletin.source_name,
        "level": bulletin.level,
        "message": bulletin.message,
        "timestamp": _time_of_day(bulletin.timestamp),
        "timestampIso": _iso(bulletin.timestamp),
        "sourceType": bulletin.source_type,
    }
    entity: dict[str, Any] = {
        "id": bulletin.id,
        "groupId": bulletin.group_id,
        "sourceId": bulletin.source_id,
        "timestamp": dto["timestamp"],
        "timestampIso": dto["timestampIso"],
        "canRead": True,
        "bulletin": dto,
    }
    if node_address is not None:
        dto["nodeAddress"] = node_address
        entity["nodeAddress"] = node_address
    return entity


def board_entity(
    sources: Iterable[tuple[str | None, BulletinLog]], query: Mapping[str, str]
) -> dict[str, Any]:
    """``GET /flow/bulletin-board``: a ``BulletinBoardEntity`` merged over ``sources``
    (node address, log), oldest first, at most ``limit``."""
    chosen = [
        (bulletin, address) for address, log in sources for bulletin in select(log.bulletins, query)
    ]
    chosen.sort(key=lambda pair: (pair[0].timestamp, pair[0].id))
    if "limit" in query:
        chosen = chosen[: int(query["limit"])]
    return {
        "bulletinBoard": {
            "bulletins": [bulletin_entity(b, address) for b, address in chosen],
            "generated": _time_of_day(time.time()),
        }
    }
