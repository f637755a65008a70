"""Offer rules and ranking on SQLite and PostgreSQL: events through the real ingest path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from service.identity.service import link_shoppers
from service.offers.models import Coupon, Offer, OfferImpression
from service.offers.ranking import Item
from service.offers.service import OfferPolicy, get_offers, record_feedback
from service.offers.stats import StatsCache
from service.settings import Settings
from service.shoppers.erasure import erase_shopper
from service.touchpoints.models import Event
from service.touchpoints.service import Ingestor
from service.wiring import erasers, ingest_hooks
from tests.service.analytics.support import ev, migrated, store

NOW = datetime.now(UTC).replace(microsecond=0)
H = timedelta(hours=1)
# A fixed test catalog (the real one is the glasses helper's; these tests are about rules).
ITEMS = {
    "F1": Item("F1", "Round One", "round", ("black", "tortoise"), 130.0),
    "F2": Item("F2", "Round Two", "round", ("black",), 138.0, "frame", 129.0, "EUR"),
    "F3": Item("F3", "Aviator", "aviator", ("gold",), 146.0),
    "F4": Item("F4", "Cat Eye", "cat-eye", ("red",), 138.0),
    "F5": Item("F5", "Wide Rectangle", "rectangle", ("black",), 152.0),
}
SETTINGS = Settings(
    coupon_after_hours=24,
    coupon_valid_hours=72,
    offer_frequency_cap=2,
    offer_frequency_window_hours=24,
)


@pytest.fixture(scope="module")
def db(db_url):
    with migrated(db_url) as factory:
        # Other shoppers: two tried Round One and then bought the Cat Eye.
        store(
            factory,
            [
                e
                for o in ("o1", "o2")
                for e in (
                    ev("Frame Applied", o, NOW - 50 * H, sku="F1"),
                    ev("Frame Applied", o, NOW - 49 * H, sku="F4"),
                    ev("Order Completed", o, NOW - 48 * H, sku="F4", order_id=f"ord-{o}"),
                )
            ],
        )
        yield factory


INGEST = Ingestor(ingest_hooks())


def _policy(s: Settings) -> OfferPolicy:
    return OfferPolicy(
        s.offer_frequency_cap,
        s.offer_frequency_window_hours,
        s.coupon_after_hours,
        s.coupon_valid_hours,
    )


def offers(db, shopper, *, now=NOW, channel=None, settings=SETTINGS, limit=5):
    with db.begin() as s:
        return get_offers(
            s,
            _policy(settings),
            INGEST,
            ITEMS,
            StatsCache(ttl_s=0),
            shopper,
            channel=channel,
            limit=limit,
            now=now,
        )


def tried(shopper, sku, at, dwell_ms=None, channel="kiosk", **props):
    out = [ev("Frame Applied", shopper, at, channel, sku=sku, **props)]
    if dwell_ms:
        out.append(ev("Try-On Dwell", shopper, at, channel, sku=sku, dwell_ms=dwell_ms))
    return out


class TestRankingAndReasons:
    def test_reasons_text(self, db) -> None:
        store(
            db,
            [
                *tried("r1", "F1", NOW - H, 40_000),
                ev("Try-On Started", "r1", NOW - H, "kiosk", face_width_mm=153.0, consent=True),
            ],
        )
        res = offers(db, "r1")
        got = {o["sku"]: o for o in res["offers"]}
        assert {"F1", "F2", "F4"} <= set(got)
        assert "you tried this frame for 40 s" in got["F1"]["reasons"]
        assert any(r.startswith("fits your face width") for r in got["F2"]["reasons"])
        assert "others who tried Round One chose Cat Eye" in got["F4"]["reasons"]
        assert all(o["reason"] == o["reasons"][0] for o in res["offers"])

    def test_no_face_width_without_consent(self, db) -> None:
        store(
            db,
            [
                *tried("r2", "F3", NOW - H),
                ev("Try-On Started", "r2", NOW - H, "kiosk", face_width_mm=153.0, consent=False),
            ],
        )
        reasons = [r for o in offers(db, "r2")["offers"] for r in o["reasons"]]
        assert not any("face width" in r for r in reasons)

    def test_new_shopper_gets_popular_items(self, db) -> None:
        res = offers(db, "brand-new")
        assert res["offers"][0]["sku"] in {"F1", "F4"}  # tried/bought most by others
        assert "popular with other shoppers" in res["offers"][0]["reasons"]

    def test_shown_offers_are_recorded_and_ingested(self, db) -> None:
        res = offers(db, "r3")
        with db() as s:
            n = s.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.event == "Offer Shown", Event.shopper_id == "r3")
            )
            rows = s.scalar(select(func.count()).select_from(Offer).where(Offer.shopper_id == "r3"))
        assert n == rows == len(res["offers"]) > 0


class TestStatsCache:
    def test_stale_value_served_while_refreshing(self, db) -> None:
        clock = [0.0]
        cache = StatsCache(ttl_s=3600, clock=lambda: clock[0])
        with db() as s:
            first = cache.get(s, NOW)
        store(db, tried("sc", "F5", NOW - H))
        clock[0] += 3601  # an hour later, on the cache's own clock
        with db() as s:
            assert cache.get(s, NOW) is first  # no request waits for the recomputation
        cache.wait(30)
        with db() as s:
            fresh = cache.get(s, NOW)
        assert fresh is not first and fresh.tried_by["F5"] == first.tried_by.get("F5", 0) + 1


class TestSupportSuppression:
    def test_suppressed_while_open_then_lifted(self, db) -> None:
        store(
            db,
            [
                *tried("sup", "F2", NOW - 2 * H),
                ev("Support Issue Opened", "sup", NOW - H, "call_centre", issue_id="T-1"),
            ],
        )
        res = offers(db, "sup")
        assert res["offers"] == [] and res["reason"] == "open_support_issue"
        assert res["open_issues"] == ["T-1"]
        with db() as s:  # nothing shown, nothing counted
            assert (
                s.scalar(
                    select(func.count())
                    .select_from(OfferImpression)
                    .where(OfferImpression.shopper_id == "sup")
                )
                == 0
            )
        store(db, [ev("Support Issue Resolved", "sup", NOW - H / 2, "call_centre", issue_id="T-1")])
        assert offers(db, "sup")["offers"]

    def test_other_issue_still_open(self, db) -> None:
        store(
            db,
            [
                ev("Support Issue Opened", "sup2", NOW - 3 * H, "web", issue_id="A"),
                ev("Support Issue Opened", "sup2", NOW - 2 * H, "web", issue_id="B"),
                ev("Support Issue Resolved", "sup2", NOW - H, "web", issue_id="A"),
            ],
        )
        assert offers(db, "sup2")["reason"] == "open_support_issue"


class TestCoupon:
    def test_given_once_and_expiring(self, db) -> None:
        store(db, tried("cp", "F3", NOW - 30 * H))
        first = offers(db, "cp")
        with_coupon = [o for o in first["offers"] if o["coupon"]]
        assert [o["sku"] for o in with_coupon] == ["F3"]
        code = with_coupon[0]["coupon"]["code"]
        assert with_coupon[0]["reason"].startswith("10% off")
        again = offers(db, "cp", now=NOW + H)  # same coupon while valid, not a new one
        assert [o["coupon"]["code"] for o in again["offers"] if o["coupon"]] == [code]
        later = offers(db, "cp", now=NOW + 73 * H)  # expired, and never re-issued
        assert not any(o["coupon"] for o in later["offers"])
        with db() as s:
            assert (
                s.scalar(select(func.count()).select_from(Coupon).where(Coupon.shopper_id == "cp"))
                == 1
            )

    def test_not_before_n_hours_nor_after_order(self, db) -> None:
        store(
            db,
            [
                *tried("cp2", "F3", NOW - 2 * H),
                *tried("cp3", "F3", NOW - 30 * H),
                ev("Order Completed", "cp3", NOW - 29 * H, sku="F3", order_id="x"),
            ],
        )
        assert not any(o["coupon"] for o in offers(db, "cp2")["offers"])
        assert not any(o["coupon"] for o in offers(db, "cp3")["offers"])
        # A multi-line order (no sku column) finishes the purchase too, and bought frames
        # are not offered again.
        store(
            db,
            [
                *tried("cp4", "F3", NOW - 30 * H),
                ev(
                    "Order Completed",
                    "cp4",
                    NOW - 29 * H,
                    order_id="y",
                    products=[{"sku": "F3"}, {"sku": "F1"}],
                ),
            ],
        )
        res = offers(db, "cp4")["offers"]
        assert not any(o["coupon"] for o in res)
        assert not {"F1", "F3"} & {o["sku"] for o in res}


class TestFrequencyCap:
    def test_cap_per_channel_and_window(self, db) -> None:
        assert offers(db, "fq", channel="web")["offers"]
        assert offers(db, "fq", channel="web")["offers"]
        capped = offers(db, "fq", channel="web")
        assert capped["offers"] == [] and capped["reason"] == "frequency_cap"
        assert offers(db, "fq", channel="app")["offers"]  # another channel has its own cap
        assert offers(db, "fq", channel="web", now=NOW + 25 * H)["offers"]  # window passed


class TestFeedback:
    def test_rejected_demoted_accepted_boosted(self, db) -> None:
        uncapped = Settings(offer_frequency_cap=100)
        store(db, [*tried("fb", "F1", NOW - H, 30_000), *tried("fb", "F2", NOW - H, 20_000)])
        first = offers(db, "fb", settings=uncapped)["offers"]
        top, last = first[0], first[-1]
        with db.begin() as s:
            assert record_feedback(s, INGEST, "fb", top["offer_id"], "rejected", now=NOW)["logged"]
            again = record_feedback(s, INGEST, "fb", top["offer_id"], "rejected", now=NOW)
            assert again["duplicate"]
        after = [o["sku"] for o in offers(db, "fb", settings=uncapped, now=NOW + H)["offers"]]
        assert top["sku"] not in after[:1]
        rank_before = [o["sku"] for o in first].index(last["sku"])
        with db.begin() as s:
            record_feedback(s, INGEST, "fb", last["offer_id"], "accepted", now=NOW + H)
        boosted = [o["sku"] for o in offers(db, "fb", settings=uncapped, now=NOW + 2 * H)["offers"]]
        assert boosted.index(last["sku"]) < rank_before
        with db() as s:
            names = list(
                s.scalars(
                    select(Event.event).where(
                        Event.shopper_id == "fb", Event.event.like("Offer %ed")
                    )
                )
            )
        assert sorted(names) == ["Offer Accepted", "Offer Rejected"]

    def test_unknown_offer(self, db) -> None:
        from service.errors import NotFound

        with db.begin() as s, pytest.raises(NotFound):
            record_feedback(s, INGEST, "fb", "nope", "accepted")


class TestChannelsIdentityErasure:
    def test_preferred_channel(self, db) -> None:
        store(
            db,
            [
                *tried("ch", "F1", NOW - 3 * H, channel="app"),
                *tried("ch", "F2", NOW - 2 * H, channel="app"),
                *tried("ch", "F3", NOW - H, channel="kiosk"),
            ],
        )
        res = offers(db, "ch")
        assert res["delivery_channel"] == "app" and res["channel"] == "app"

    def test_phone_sees_kiosk_history_and_erasure(self, db) -> None:
        store(db, tried("kiosk-anon", "F5", NOW - H, 25_000))
        with db.begin() as s:
            link_shoppers(s, [("phone-anon", "kiosk-anon")], source="handoff")
        res = offers(db, "phone-anon")
        f5 = next(o for o in res["offers"] if o["sku"] == "F5")
        assert "you tried this frame for 25 s" in f5["reasons"]
        with db.begin() as s:
            counts = erase_shopper(s, "phone-anon", erasers())
        assert counts["offers"] >= 1 and counts["offer_impressions"] >= 1
        with db() as s:
            assert (
                s.scalar(
                    select(func.count())
                    .select_from(Offer)
                    .where(Offer.shopper_id.in_(["phone-anon", "kiosk-anon"]))
                )
                == 0
            )


def test_http_offers_feedback_and_delete(tmp_path) -> None:
    """The real app: kiosk scope for offers/feedback, admin DELETE erases the derived rows."""
    from service.access.keys import create_key
    from service.app import create_app

    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'o.sqlite'}", retention_on_startup=False),
        offer_items=ITEMS,
    )
    with TestClient(app) as c:
        with app.state.runtime.sessions.begin() as s:
            kiosk_row, kiosk = create_key(s, "k", ["kiosk"])
            kiosk_id = kiosk_row.id
            _, admin = create_key(s, "a", ["admin"])
        store(app.state.runtime.sessions, tried("h1", "F2", NOW - H, 12_000))
        with app.state.runtime.sessions.begin() as s:  # as if this kiosk had stored them
            from service.touchpoints.models import Event

            s.execute(update(Event).where(Event.shopper_id == "h1").values(key_id=kiosk_id))
        assert c.get("/v1/shoppers/h1/offers").status_code == 401
        bad_channel = c.get(
            "/v1/shoppers/h1/offers", params={"channel": "tv"}, headers={"X-API-Key": kiosk}
        )
        assert bad_channel.status_code == 422
        # Ids no event can carry (too long, blank, NUL) were a 500: Offer Shown was rejected.
        for sid in ("x" * 129, "%20%20", "a%00b"):
            r = c.get(f"/v1/shoppers/{sid}/offers", headers={"X-API-Key": kiosk})
            assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
            r = c.post(f"/v1/shoppers/{sid}/offers/o1/feedback", json={"action": "accepted"},
                       headers={"X-API-Key": kiosk})
            assert r.status_code == 422
        r = c.get("/v1/shoppers/h1/offers", params={"limit": 3}, headers={"X-API-Key": kiosk})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["offers"]) == 3 and body["offers"][0]["sku"] == "F2"
        assert (body["offers"][0]["price"], body["offers"][0]["currency"]) == (129.0, "EUR")
        oid = body["offers"][0]["offer_id"]
        fb = c.post(
            f"/v1/shoppers/h1/offers/{oid}/feedback",
            json={"action": "rejected"},
            headers={"X-API-Key": kiosk},
        )
        assert fb.status_code == 200 and fb.json()["feedback"] == "rejected"
        bad = c.post(
            f"/v1/shoppers/h1/offers/{oid}/feedback",
            json={"action": "maybe"},
            headers={"X-API-Key": kiosk},
        )
        assert bad.status_code == 422
        assert c.delete("/v1/shoppers/h1", headers={"X-API-Key": admin}).status_code == 200
        with app.state.runtime.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Offer)) == 0


def test_items_from_the_real_catalog() -> None:
    """The offers adapter reads the bundled glasses catalog (sku, style, colours, width, price)."""
    from service.offers.catalog import items_from_products
    from service.settings import Settings
    from vision.catalog import GlassesCatalog

    products = GlassesCatalog.load(Settings().assets_dir).products
    items = items_from_products(p.to_dict() for p in products)
    assert len(items) == len(products) > 0
    for it in items.values():
        assert it.style and it.colors and it.frame_width_mm and 100 < it.frame_width_mm < 170
        assert it.price is not None and it.kind == "frame"


def test_items_from_the_real_shades() -> None:
    from service.offers.catalog import items_from_shades
    from vision.lipstick import load_shades

    shades = load_shades()
    items = items_from_shades(shades.shades)
    assert len(items) == len(shades.shades) >= 12
    assert all(
        it.kind == "shade" and it.style in {"matte", "satin", "gloss", "shimmer"}
        for it in items.values()
    )


def test_end_to_end_with_the_real_catalog(tmp_path) -> None:
    """POST /v1/events (kiosk) -> GET offers ranks the bundled catalog's frames and shades."""
    from service.access.keys import create_key
    from service.app import create_app

    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path / 'e.sqlite'}", retention_on_startup=False)
    )
    with TestClient(app) as c:
        with app.state.runtime.sessions.begin() as s:
            _, kiosk = create_key(s, "k", ["kiosk"])
        h = {"X-API-Key": kiosk}
        sku = app.state.runtime.catalog.list_products()[1]["sku"]
        shade = app.state.runtime.catalog.shade_list()[0].id
        events = [
            ev("Frame Applied", "e2e", NOW - H, "kiosk", sku=sku),
            ev("Try-On Dwell", "e2e", NOW - H, "kiosk", sku=sku, dwell_ms=30_000),
            ev("Shade Applied", "e2e", NOW - H, "kiosk", shade=shade),
        ]
        assert c.post("/v1/events", json={"events": events}, headers=h).json()["inserted"] == 3
        body = c.get("/v1/shoppers/e2e/offers", params={"limit": 10}, headers=h).json()
        got = {o["sku"]: o for o in body["offers"]}
        assert "you tried this frame for 30 s" in got[sku]["reasons"]
        assert (
            got[shade]["kind"] == "shade" and "you tried this shade once" in got[shade]["reasons"]
        )
        assert body["delivery_channel"] == "kiosk"
