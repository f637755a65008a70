"""The start-up back-fill of rollups and groups for rows stored before they existed."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.analytics import queries
from service.analytics.definitions import Filters
from service.db.engine import make_engine
from service.identity.models import ShopperGroup
from tests.service.analytics.support import fixture_events, identity_events


def test_start_up_backfills_existing_rows(db_url: str) -> None:
    """A database with events and links from before 0004_rollups gets them rolled up by the
    start-up back-fill (service.wiring.backfill; the migration itself imports no app code)."""
    from sqlalchemy import insert

    from service.db.migrate import upgrade
    from service.identity.models import ShopperAlias
    from service.touchpoints.service import ingest
    from service.wiring import backfill

    engine = make_engine(db_url)
    try:
        upgrade(engine, "0003_analytics")
        upgrade(engine, "0005_sessions")  # events.key_id: today's ingest() writes it
        now = datetime.now(UTC)
        with Session(engine) as s, s.begin():  # the raw rows only: no hooks (no rollups yet)
            res = ingest(s, [*fixture_events(), *identity_events()], source="test", now=now)
        assert res.rejected == 0 and res.duplicates == 0
        with engine.begin() as conn:
            conn.execute(
                insert(ShopperAlias),
                [
                    {"shopper_id": a, "alias_id": b, "source": "test", "created_at": now}
                    for a, b in (("k1", "p1"), ("p1", "u1"))
                ],
            )
        upgrade(engine)
        with Session(engine) as s:  # the migration alone leaves them empty
            assert s.execute(select(ShopperGroup.__table__)).all() == []
        backfill(engine)
        assert backfill(engine) == {}  # and only once: the second start finds them filled
        with Session(engine) as s:
            assert sorted(s.execute(select(ShopperGroup.__table__)).all()) == [
                ("k1", "k1"),
                ("p1", "k1"),
                ("u1", "k1"),
            ]
            fast = {r["sku"]: r for r in queries.product_summary(s, Filters(), (), "counts")}
            raw = {r["sku"]: r for r in queries.product_summary(s, Filters(), ())}
            shades = queries.shade_popularity(s, Filters(), True, "counts")
        # Lipstick try-ons count as products too (a shade's sku is its id).
        assert {k: r["try_ons"] for k, r in fast.items()} == {
            "RB-1": 4, "RB-2": 3, "RB-7": 3, "coral": 3, "nude": 1, "ruby": 3
        }
        assert {k: r["try_ons"] for k, r in raw.items()} == {
            k: r["try_ons"] for k, r in fast.items()
        }
        assert sum(r["applications"] for r in shades) == 7
    finally:
        engine.dispose()
