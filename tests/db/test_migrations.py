"""One migration history: a single head, and downgrade/upgrade round trips with data."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.all_models import MODEL_MODULES
from service.db.engine import create_engine
from service.db.migrate import alembic_config, ensure_database, migrate
from service.db.models import Base
from service.settings import DatabaseSettings, Settings

# The newest revision: every later migration moves it.
HEAD = "0011"
SEEDED_TABLES = ("job_templates", "job_runs", "credentials", "nifi_clusters", "inventories")


def test_the_history_has_exactly_one_head() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_heads() == [HEAD]
    # Every revision is reachable from the head: nothing is left on a side branch.
    reachable = {revision.revision for revision in scripts.walk_revisions("base", "heads")}
    assert reachable == {revision.revision for revision in scripts.walk_revisions()}


@pytest.fixture
async def scratch_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A database of its own: the suite's shared one keeps its schema."""
    shared = make_url(settings.database.url)
    url = shared.set(database=f"{shared.database}_migrations")
    rendered = url.render_as_string(hide_password=False)
    await ensure_database(rendered)
    engine = create_engine(DatabaseSettings(url=rendered, pool_size=1, max_overflow=0))
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    yield engine
    await engine.dispose()


def _schema_differences(connection: Connection) -> list[object]:
    assert MODEL_MODULES
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _seed(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO job_templates (name, job_type, config, queue, is_global, owner)"
                " VALUES ('t', 'diag.echo', '{}', NULL, true, 'admin')"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO job_runs (job_name, job_type, template_id, queue, status,"
                " triggered_by, parameters) VALUES ('t', 'diag.echo', 1, 'default', 'completed',"
                " 'manual', '{}')"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO credentials (name, type, username, key_id, ciphertext,"
                " secret_fields, is_global, owner)"
                " VALUES ('c', 'ssh_password', 'u', 'k1', 'x', '[]', true, 'admin')"
            )
        )
        await conn.execute(text("INSERT INTO nifi_clusters (name) VALUES ('east')"))
        await conn.execute(
            text(
                "INSERT INTO inventories (name, tree, is_global, owner)"
                " VALUES ('i', '{\"version\": 2, \"items\": []}', true, 'admin')"
            )
        )


async def test_downgrade_to_base_and_upgrade_to_head_round_trip_with_data(
    scratch_engine: AsyncEngine,
) -> None:
    await migrate(scratch_engine)
    await _seed(scratch_engine)
    async with scratch_engine.begin() as conn:
        assert set(SEEDED_TABLES) <= await conn.run_sync(_tables)
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))
        assert await conn.run_sync(_tables) == {"alembic_version"}
    await migrate(scratch_engine)
    async with scratch_engine.begin() as conn:
        assert await conn.run_sync(_schema_differences) == []
        version = await conn.execute(text("SELECT version_num FROM alembic_version"))
        assert version.scalars().all() == [HEAD]
    # The schema takes the same data again after the round trip.
    await _seed(scratch_engine)


async def test_a_database_on_both_old_heads_moves_to_the_one_head(
    scratch_engine: AsyncEngine,
) -> None:
    """Installations migrated before the join hold both 0003 and 0004 as their heads."""
    async with scratch_engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0003"))
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0004"))
        version = await conn.execute(text("SELECT version_num FROM alembic_version"))
        assert sorted(version.scalars().all()) == ["0003", "0004"]
    await migrate(scratch_engine)
    async with scratch_engine.begin() as conn:
        version = await conn.execute(text("SELECT version_num FROM alembic_version"))
        assert version.scalars().all() == [HEAD]
        assert await conn.run_sync(_schema_differences) == []


async def test_retries_recorded_as_manual_become_retry_and_back(
    scratch_engine: AsyncEngine,
) -> None:
    async with scratch_engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0008"))
        for run_id, retry_of in ((1, None), (2, 1)):
            await conn.execute(
                text(
                    "INSERT INTO job_runs (id, job_name, job_type, queue, status, triggered_by,"
                    " retry_of_id, parameters) VALUES (:id, 'r', 'diag.echo', 'default',"
                    " 'completed', 'manual', :retry_of, '{}')"
                ),
                {"id": run_id, "retry_of": retry_of},
            )
    await migrate(scratch_engine)
    query = text("SELECT id, triggered_by FROM job_runs ORDER BY id")
    async with scratch_engine.begin() as conn:
        assert (await conn.execute(query)).all() == [(1, "manual"), (2, "retry")]
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0008"))
        assert (await conn.execute(query)).all() == [(1, "manual"), (2, "manual")]


async def test_runs_recorded_before_0008_are_marked_from_what_they_name(
    scratch_engine: AsyncEngine,
) -> None:
    async with scratch_engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0007"))
        await conn.execute(
            text(
                "INSERT INTO job_templates (id, name, job_type, config, is_global, owner) VALUES"
                " (1, 'mine', 'diag.echo', '{}', false, 'alice'),"
                " (2, 'ours', 'run_commands', '{}', true, 'alice')"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO credentials (id, name, type, username, key_id, ciphertext,"
                " secret_fields, is_global, owner)"
                " VALUES (7, 'c', 'ssh_password', 'u', 'k1', 'x', '[]', false, 'alice')"
            )
        )
        runs = [
            (1, 1, "{}", "alice"),  # a private template
            (2, 2, '{"credential_id": 7}', "alice"),  # a private credential as a parameter
            (3, 2, '{"credential_id": "x", "targets": {"inventory_id": 99}}', "bob"),  # none
            (4, None, '{"command_template_id": 3000000000}', "bob"),  # beyond any id
        ]
        for run_id, template_id, parameters, executed_by in runs:
            await conn.execute(
                text(
                    "INSERT INTO job_runs (id, job_name, job_type, template_id, queue, status,"
                    " triggered_by, executed_by, parameters) VALUES (:id, 'r', 'diag.echo',"
                    " :template, 'default', 'completed', 'manual', :by, CAST(:p AS jsonb))"
                ),
                {"id": run_id, "template": template_id, "by": executed_by, "p": parameters},
            )
    await migrate(scratch_engine)
    async with scratch_engine.begin() as conn:
        marked = await conn.execute(text("SELECT id, private_to FROM job_runs ORDER BY id"))
        assert marked.all() == [(1, "alice"), (2, "alice"), (3, None), (4, None)]


async def test_0010_adds_retry_policies_and_kept_attempts_and_round_trips(
    scratch_engine: AsyncEngine,
) -> None:
    async with scratch_engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "0008"))
    await _seed(scratch_engine)
    await migrate(scratch_engine)
    async with scratch_engine.begin() as conn:
        # Rows from before keep the default policy (NULL) and no retry_at.
        before = await conn.execute(
            text("SELECT retry_policy, retry_at, max_attempts FROM job_runs")
        )
        assert before.all() == [(None, None, 1)]
        template = await conn.execute(text("SELECT retry_policy FROM job_templates"))
        assert template.scalars().all() == [None]
        await conn.execute(
            text(
                "UPDATE job_templates SET retry_policy = "
                """'{"on": ["failed"], "backoff_seconds": 5}'"""
            )
        )
        await conn.execute(
            text(
                "INSERT INTO job_run_attempts (run_id, attempt, status, failure, error, result)"
                """ VALUES (1, 1, 'failed', 'failed', 'boom', '{"partial": true}')"""
            )
        )
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0008"))
        assert "job_run_attempts" not in await conn.run_sync(_tables)
        columns = await conn.run_sync(
            lambda sync: {column["name"] for column in inspect(sync).get_columns("job_runs")}
        )
        assert not {"retry_policy", "retry_at"} & columns
    await migrate(scratch_engine)
    async with scratch_engine.begin() as conn:
        assert await conn.run_sync(_schema_differences) == []
        # A deleted run takes its kept attempts with it.
        await conn.execute(
            text("INSERT INTO job_run_attempts (run_id, attempt, status) VALUES (1, 1, 'failed')")
        )
        await conn.execute(text("DELETE FROM job_runs"))
        remaining = await conn.execute(text("SELECT count(*) FROM job_run_attempts"))
        assert remaining.scalar_one() == 0
