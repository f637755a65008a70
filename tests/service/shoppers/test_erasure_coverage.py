"""Every table that can hold a shopper id is erased and purged: a walk of the whole metadata.

The rule: a column holds a shopper id when its name is one of SHOPPER_ID_COLUMNS (the names
the features use for a shopper's id, an alias of it, or a group's canonical id). Every table
of `load_metadata()` with such a column must be in the `tables` of some Eraser from
`service.wiring.erasers()` and some Purger from `service.wiring.purgers()`, and running them
must really leave no row carrying the id.

A table added later with a shopper-id column and no eraser (or no purger) makes this test
fail: the walk finds it in the metadata, and it is in no Eraser's/Purger's `tables`; if it is
listed but its function does not delete it, the generic row inserted into it survives.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, Table
from sqlalchemy.orm import Session

from service.db.engine import make_engine
from service.db.migrate import upgrade
from service.db.model_modules import load_metadata
from service.shoppers.erasure import erase_shopper
from service.shoppers.retention import purge_older_than
from service.wiring import erasers, purgers

SHOPPER_ID_COLUMNS = frozenset(
    {"shopper_id", "anonymous_id", "user_id", "alias_id", "claimed_by", "canonical_id"}
)
AT_LEAST = {
    "events",
    "handoff_tokens",
    "shopper_aliases",
    "analytics_shopper_groups",
    "offers",
    "offer_impressions",
    "coupons",
}
SHOPPER = "erase-me-7f3a"
OLD = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)


def id_columns(table: Table) -> list[sa.Column[Any]]:
    return [c for c in table.columns if c.name in SHOPPER_ID_COLUMNS]


def shopper_tables() -> list[Table]:
    """The tables with a shopper-id column, parents before children (foreign keys)."""
    return [t for t in load_metadata().sorted_tables if id_columns(t)]


def value_for(column: sa.Column[Any]) -> Any:
    """A value of the column's type; the shopper id in every shopper-id column."""
    if column.name in SHOPPER_ID_COLUMNS:
        return SHOPPER
    t = column.type
    while isinstance(t, sa.TypeDecorator):  # UTCDateTime and the like: judge by what they store
        t = t.impl_instance
    if isinstance(t, sa.Boolean):
        return False
    if isinstance(t, sa.DateTime):
        return OLD
    if isinstance(t, sa.Date):
        return OLD.date()
    if isinstance(t, sa.JSON):
        return {}
    if isinstance(t, sa.LargeBinary):
        return b"x"
    if isinstance(t, (sa.Integer, sa.Float, sa.Numeric)):  # BigInteger is an Integer
        return 1
    if isinstance(t, sa.String):
        return "x"
    raise AssertionError(f"no test value for {column.table.name}.{column.name}: {t!r}")


def row_for(table: Table) -> dict[str, Any]:
    """Every shopper-id column (nullable or not) and every other required column filled;
    an autoincrement key is left to the database."""
    auto = table.autoincrement_column
    return {
        c.name: value_for(c)
        for c in table.columns
        if c is not auto and (c.name in SHOPPER_ID_COLUMNS or not c.nullable)
    }


def insert_one_each(session: Session, tables: list[Table]) -> None:
    for table in tables:  # sorted_tables order: offer_impressions before offers
        session.execute(sa.insert(table).values(row_for(table)))
    session.flush()


def rows_with_the_id(session: Session, tables: list[Table]) -> dict[str, int]:
    found = {}
    for table in tables:
        cond = sa.or_(*(c == SHOPPER for c in id_columns(table)))
        n = session.scalar(sa.select(sa.func.count()).select_from(table).where(cond)) or 0
        if n:
            found[table.name] = n
    return found


@pytest.fixture(scope="module")
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def test_the_rule_finds_the_known_shopper_tables() -> None:
    names = {t.name for t in shopper_tables()}
    assert names >= AT_LEAST, AT_LEAST - names
    # and the rule is not "every table": aggregates and keys hold no shopper id
    assert {"analytics_daily_product", "api_keys", "rate_counters"}.isdisjoint(names)


def test_every_shopper_table_has_an_eraser_and_a_purger() -> None:
    erased = {name for e in erasers() for name in e.tables}
    purged = {name for p in purgers() for name in p.tables}
    names = {t.name for t in shopper_tables()}
    assert names - erased == set(), "tables with a shopper id that no Eraser lists"
    assert names - purged == set(), "tables with a shopper id that no Purger lists"


def test_erasure_leaves_no_row_with_the_id(engine: Engine) -> None:
    tables = shopper_tables()
    with Session(engine) as session:
        insert_one_each(session, tables)
        assert set(rows_with_the_id(session, tables)) == {t.name for t in tables}
        erase_shopper(session, SHOPPER, erasers())
        session.flush()
        assert rows_with_the_id(session, tables) == {}
        session.rollback()


def test_retention_purges_every_old_row(engine: Engine) -> None:
    tables = shopper_tables()
    with Session(engine) as session:
        insert_one_each(session, tables)
        purge_older_than(session, 30, purgers())
        session.flush()
        left = {
            t.name: n
            for t in tables
            if (n := session.scalar(sa.select(sa.func.count()).select_from(t)) or 0)
        }
        assert left == {}
        session.rollback()
