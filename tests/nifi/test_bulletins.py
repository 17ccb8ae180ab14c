"""Bulletins as pure functions (parsing, what is new per node, the filter) and the
schedule's cursor in PostgreSQL under concurrent runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from executors.services import Services
from service.db.nifi_models import NifiClusterRow
from service.nifi.bulletin_cursors import advance_cursor
from service.nifi.bulletins import Bulletin, BulletinFilter, Level, newer_than, parse_board
from service.nifi.errors import NifiRequestError
from tests.scheduling.factories import make_schedule, make_template


def bulletin(node: str, bulletin_id: int, level: Level = Level.ERROR, **values: Any) -> Bulletin:
    fields: dict[str, Any] = {
        "message": f"{node}-{bulletin_id}",
        "source_name": "PutFile",
        "source_id": "p1",
        "group_id": "g1",
        "category": "Log Message",
        "timestamp": f"2026-12-08T10:00:{bulletin_id:02d}.000Z",
    }
    fields.update(values)
    return Bulletin(id=bulletin_id, node=node, level=level, **fields)


def test_board_entities_are_parsed_with_and_without_read_access() -> None:
    board = {
        "bulletinBoard": {
            "bulletins": [
                {
                    "id": 7,
                    "groupId": "g",
                    "sourceId": "s",
                    "nodeAddress": "n1",
                    "canRead": True,
                    "timestamp": "10:00:00 UTC",
                    "bulletin": {
                        "id": 7,
                        "level": "WARNING",
                        "message": "slow",
                        "sourceName": "InvokeHTTP",
                        "category": "Log Message",
                        "timestampIso": "2026-12-08T10:00:00.123Z",
                    },
                },
                {"id": 8, "groupId": "g", "sourceId": "s", "canRead": False},
                {"no": "id"},
            ],
            "generated": "10:00:01 UTC",
        }
    }
    readable, hidden = parse_board(board)
    assert (readable.id, readable.node, readable.level, readable.source_name) == (
        7,
        "n1",
        Level.WARNING,
        "InvokeHTTP",
    )
    assert readable.timestamp == "2026-12-08T10:00:00.123Z"
    assert (hidden.id, hidden.level, hidden.node) == (8, None, "")
    assert not BulletinFilter(min_level=Level.DEBUG).keeps(hidden)
    with pytest.raises(NifiRequestError, match="bulletinBoard"):
        parse_board({})


@pytest.mark.parametrize(
    ("cursor", "board", "fresh", "moved"),
    [
        ({}, [("a", 0), ("a", 1), ("b", 0)], [("a", 0), ("a", 1), ("b", 0)], {"a": 1, "b": 0}),
        ({"a": 1, "b": 0}, [("a", 0), ("a", 1), ("b", 0)], [], {"a": 1, "b": 0}),
        ({"a": 1}, [("a", 1), ("a", 2), ("a", 3)], [("a", 2), ("a", 3)], {"a": 3}),
        # a restarted node numbers from 0 again
        ({"a": 9}, [("a", 0), ("a", 1)], [("a", 0), ("a", 1)], {"a": 1}),
        # a node absent now keeps its place
        ({"a": 4, "b": 2}, [("a", 5)], [("a", 5)], {"a": 5, "b": 2}),
        ({"": 3}, [("", 2), ("", 4)], [("", 4)], {"": 4}),
    ],
)
def test_what_is_new_is_judged_per_node(
    cursor: dict[str, int],
    board: list[tuple[str, int]],
    fresh: list[tuple[str, int]],
    moved: dict[str, int],
) -> None:
    found, cursor_after = newer_than([bulletin(n, i) for n, i in board], cursor)
    assert sorted((b.node, b.id) for b in found) == sorted(fresh)
    assert cursor_after == moved


@pytest.mark.parametrize(
    ("selection", "kept"),
    [
        (BulletinFilter(), [True, True, False, False]),
        (BulletinFilter(min_level=Level.ERROR), [True, False, False, False]),
        (BulletinFilter(min_level=Level.DEBUG), [True, True, True, True]),
        (BulletinFilter(min_level=Level.DEBUG, source_name="^Put"), [True, True, False, True]),
        (BulletinFilter(min_level=Level.DEBUG, group_ids=frozenset({"g2"})), [False] * 3 + [True]),
    ],
)
def test_the_filter(selection: BulletinFilter, kept: list[bool]) -> None:
    bulletins = [
        bulletin("a", 0, Level.ERROR),
        bulletin("a", 1, Level.WARNING),
        bulletin("a", 2, Level.INFO, source_name="GetFile"),
        bulletin("a", 3, Level.DEBUG, group_id="g2"),
    ]
    assert [selection.keeps(b) for b in bulletins] == kept


RUNS = 6


async def warm_connection(services: Services) -> None:
    """Hold a pool connection for a moment, so the runs below start together instead of
    one after another while their connections open."""
    async with services.sessions() as session:
        await session.execute(text("SELECT pg_sleep(0.05)"))


async def test_concurrent_runs_of_one_schedule_never_report_a_bulletin_twice(
    services: Services,
) -> None:
    template_id = await make_template(services.sessions, job_type="check_bulletins")
    schedule_id = await make_schedule(services.sessions, template_id, None)
    async with services.sessions.begin() as session:
        cluster = NifiClusterRow(name="east")
        session.add(cluster)
        await session.flush()
        cluster_id = cluster.id
    opening = await advance_cursor(services.sessions, schedule_id, cluster_id, [])
    assert opening.since_last_seconds is None
    board = [bulletin("n1", i) for i in range(5)] + [bulletin("n2", i) for i in range(3)]
    await asyncio.gather(*(warm_connection(services) for _ in range(RUNS)))
    steps = await asyncio.gather(
        *(advance_cursor(services.sessions, schedule_id, cluster_id, board) for _ in range(RUNS))
    )
    reported = [(b.node, b.id) for step in steps for b in step.fresh]
    assert sorted(reported) == sorted((b.node, b.id) for b in board)
    assert all(step.since_last_seconds is not None for step in steps)
    assert not any(step.may_have_missed for step in steps)
