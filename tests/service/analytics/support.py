"""Helpers shared by the analytics, identity and offers tests: event builders, a migrated db."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service.db.engine import make_engine, make_sessionmaker
from service.db.migrate import upgrade
from service.touchpoints.service import ingest
from service.wiring import ingest_hooks


def ev(
    event: str, shopper: str, at: datetime, channel: str = "web", **props: Any
) -> dict[str, Any]:
    """One API-shaped event; store_id and variant etc. go in properties or the envelope."""
    envelope = {k: props.pop(k) for k in ("store_id", "kiosk_id", "user_id") if k in props}
    return {
        "message_id": uuid.uuid4().hex,
        "event": event,
        "anonymous_id": shopper,
        "channel": channel,
        "timestamp": at.isoformat(),
        "properties": props,
        **envelope,
    }


def store(
    factory: sessionmaker[Session], events: list[dict[str, Any]], now: datetime | None = None
) -> None:
    """Insert through the real ingest path; every event must be accepted."""
    with factory.begin() as session:
        res = ingest(session, events, source="test", hooks=ingest_hooks(), now=now)
    bad = [r for r in res.results if r.status != "accepted"]
    assert not bad, bad


@contextmanager
def migrated(db_url: str) -> Iterator[sessionmaker[Session]]:
    """db_url (the suite's fresh database) brought to every head, as a sessionmaker."""
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)


def fixture_events() -> list[dict]:
    """The hand-computed fixture (numbers in each test's docstring)."""
    fa, dw = "Frame Applied", "Try-On Dwell"
    e = [
        # Try-ons: RB-1/black by s1 twice (kiosk, store S1) and s3 (kiosk S1); RB-1/tortoise by s2
        # (web); RB-2 by s4 and s5 (web).
        ev(fa, "s1", T0, "kiosk", sku="RB-1", variant="black", store_id="S1"),
        ev(fa, "s1", T0 + H, "kiosk", sku="RB-1", variant="black", store_id="S1"),
        ev(fa, "s2", T0 + 2 * H, "web", sku="RB-1", variant="tortoise"),
        ev(fa, "s3", T0 + 24 * H, "kiosk", sku="RB-1", variant="black", store_id="S1"),
        ev(fa, "s4", T0, "web", sku="RB-2"),
        ev(fa, "s5", T0, "web", sku="RB-2"),
        # Dwell: RB-1/black 10,20,30,40 s; RB-1/tortoise 5 s; RB-2 1 s and 3 s.
        *[
            ev(
                dw,
                "s1",
                T0 + i * H,
                "kiosk",
                sku="RB-1",
                variant="black",
                dwell_ms=ms,
                store_id="S1",
            )
            for i, ms in enumerate((40_000, 10_000, 30_000, 20_000))
        ],
        ev(dw, "s2", T0 + 2 * H, "web", sku="RB-1", variant="tortoise", dwell_ms=5_000),
        ev(dw, "s4", T0, "web", sku="RB-2", dwell_ms=1_000),
        ev(dw, "s5", T0, "web", sku="RB-2", dwell_ms=3_000),
        # Funnel (72 h window): s1 carts and orders in time; s2 carts after 100 h (too late);
        # s3 orders without a cart event; s4 carted an hour BEFORE trying (not a conversion).
        ev("Product Added", "s1", T0 + 2 * H, "kiosk", sku="RB-1"),
        # Revenue (price x quantity per line of the sku): RB-1 120 + 99.50; RB-2 2 x 80.
        ev(
            "Order Completed",
            "s1",
            T0 + 3 * H,
            "web",
            sku="RB-1",
            order_id="o1",
            price=120,
            currency="EUR",
        ),
        ev("Product Added", "s2", T0 + 100 * H, "web", sku="RB-1"),
        ev(
            "Order Completed",
            "s3",
            T0 + 25 * H,
            "kiosk",
            sku="RB-1",
            order_id="o3",
            price=99.5,
            currency="EUR",
        ),
        ev("Product Added", "s4", T0 - H, "web", sku="RB-2"),
        # s6 tries RB-2 and buys it in a two-line order (no sku column: lines are unnested).
        ev(fa, "s6", T0, "web", sku="RB-2"),
        ev(
            "Order Completed",
            "s6",
            T0 + H,
            "web",
            order_id="o6",
            currency="EUR",
            products=[{"sku": "RB-2", "price": 80, "quantity": 2}, {"sku": "RB-9", "price": 10}],
        ),
        # NPS: kiosk 10, 9, 7, 3; web 0, 6.
        *[
            ev("Feedback Submitted", f"n{i}", T0, "kiosk", nps=s)
            for i, s in enumerate((10, 9, 7, 3))
        ],
        *[ev("Feedback Submitted", f"w{i}", T0, "web", nps=s) for i, s in enumerate((0, 6))],
        # Shades: ruby x3 (MST 2 with consent, band "MST 4-7", unknown), nude x1 (MST 2).
        ev("Shade Applied", "s1", T0, "web", shade="ruby", monk_index=2, consent=True),
        ev("Shade Applied", "s2", T0, "web", shade="ruby", skin_tone_band="MST 4-7"),
        ev("Shade Applied", "s3", T0, "web", shade="ruby"),
        ev("Shade Applied", "s1", T0, "web", shade="nude", monk_index=2, consent=True),
        # Face widths: s1 129 & 131 (mean 130), s2 140, s3 141, s4 160 consented;
        # s5 150 WITHOUT consent (the ingest path drops it).
        ev("Try-On Started", "s1", T0, "kiosk", face_width_mm=129.0, consent=True),
        ev("Try-On Started", "s1", T0 + H, "kiosk", face_width_mm=131.0, consent=True),
        ev("Try-On Started", "s2", T0, "web", face_width_mm=140.0, consent=True),
        ev("Try-On Started", "s3", T0, "web", face_width_mm=141.0, consent=True),
        ev("Try-On Started", "s4", T0, "web", face_width_mm=160.0, consent=True),
        ev("Try-On Started", "s5", T0, "web", face_width_mm=150.0, consent=False),
    ]
    return e


T = datetime(2026, 4, 6, 9, 0, tzinfo=UTC)
FA, SA = "Frame Applied", "Shade Applied"


def identity_events() -> list[dict]:
    """k1 tries RB-7 at the kiosk; the phone p1 claims k1's hand-off, tries it again and
    orders; p1 then identifies as user u1, who carts it. k2 tries RB-7; p2 (never linked,
    never tried) orders it."""
    return [
        ev(FA, "k1", T, "kiosk", sku="RB-7", store_id="S1"),
        ev(FA, "k2", T, "kiosk", sku="RB-7", store_id="S1"),
        ev(FA, "p1", T + H, "app", sku="RB-7"),
        ev("Order Completed", "p1", T + 2 * H, "app", sku="RB-7", order_id="o-p1"),
        ev("Product Added", "p1", T + 3 * H, "app", sku="RB-7", user_id="u1"),
        ev("Order Completed", "p2", T + H, "app", sku="RB-7", order_id="o-p2"),
        ev(SA, "k1", T, "kiosk", shade="coral"),
        ev(SA, "p1", T + H, "app", shade="coral"),
        ev(SA, "k2", T, "kiosk", shade="coral"),
    ]
