"""The migrations: every head applied, a second upgrade a no-op, models equal to the schema,
and every migration reversible, on a real SQLite file and the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, inspect, text

from service.db.engine import make_engine
from service.db.migrate import upgrade

WRITES = {"CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE"}


@pytest.fixture(scope="module")
def engine(db_url: str) -> Iterator[Engine]:
    """db_url brought to every head (what the app's lifespan does at start-up)."""
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def schema_of(engine: Engine) -> dict[str, Any]:
    """Tables, their columns and indexes, and the alembic version rows."""
    insp = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        cols = [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)]
        idx = sorted((i["name"] or "", tuple(i["column_names"])) for i in insp.get_indexes(table))
        out[table] = (cols, idx)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version"))
        out["versions"] = sorted(r[0] for r in versions)
    return out


class TestMigrations:
    def test_every_head_applied_and_tables_exist(self, engine: Engine) -> None:
        tables = set(inspect(engine).get_table_names())
        assert {"events", "handoff_tokens", "shopper_aliases", "erasure_log"} <= tables
        with engine.connect() as conn:
            heads = {r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))}
        from alembic.script import ScriptDirectory

        from service.db.migrate import alembic_config

        script_heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
        assert heads == script_heads  # every feature branch applied (several heads by design)
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("events")}
        assert {"ix_events_event_timestamp", "ix_events_sku_event",
                "ix_events_shopper_id_timestamp"} <= indexes

    def test_upgrade_again_is_a_no_op(self, engine: Engine) -> None:
        """A second upgrade changes nothing: no DDL, no version row written, same schema."""
        before = schema_of(engine)
        statements: list[str] = []

        def record(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            upgrade(engine)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert statements, "upgrade() ran no SQL at all: the listener saw nothing"
        writes = [q for q in statements
                  if q.lstrip().split(None, 1)[0].upper() in WRITES]
        assert writes == []
        assert schema_of(engine) == before

    def test_models_match_the_migration(self, engine: Engine) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        from service.db.model_modules import load_metadata

        ours = {"events", "handoff_tokens", "shopper_aliases", "erasure_log"}
        with engine.connect() as conn:
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), load_metadata()
            )
        flat = [d for group in diffs for d in (group if isinstance(group, list) else [group])]
        # Other features may add indexes to events in their own migrations (analytics does);
        # those show up as "remove_index" against our models and are theirs to own.
        mine = [d for d in flat if any(t in repr(d) for t in ours)
                and not (d[0] == "remove_index" and d[1].table.name == "events")]
        assert mine == []


def test_every_migration_downgrades_and_upgrades_again(engine: Engine) -> None:
    """Down to base and back up (the module's database ends up at every head again)."""
    from alembic import command

    from service.db.migrate import alembic_config

    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert "events" in inspect(engine).get_table_names()
