"""Erasure (DELETE /v1/shoppers/{id}) and retention on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from service.handoff.models import HandoffToken
from service.shoppers.erasure import subject_hash
from service.shoppers.models import ErasureLog
from service.touchpoints.models import Event
from tests.service.events_support import *  # noqa: F403
from tests.service.events_support import Api, new_id, track


def count(api: Api, *conds) -> int:  # type: ignore[no-untyped-def]
    with api.sessionmaker() as s:
        return s.scalar(select(func.count()).select_from(Event).where(*conds)) or 0


class TestErasure:
    def test_ids_the_database_cannot_hold_are_not_500(self, api: Api) -> None:
        # PostgreSQL refuses NUL in text: that surfaced as a 500 (sqlalchemy DataError).
        r = api.client.delete("/v1/shoppers/a%00b", headers=api.headers("admin"))
        if api.app.state.runtime.engine.dialect.name == "postgresql":
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_value"
        else:  # SQLite stores it: simply no such shopper
            assert r.status_code == 200 and r.json()["erased"]["events"] == 0

    def test_erases_all_linked_ids_and_every_feature(self, api: Api) -> None:
        kiosk, phone, user = new_id("k-"), new_id("p-"), new_id("u-")
        other = new_id("o-")
        as_user = {**track("Product Added", phone, sku="G-1"), "user_id": user}
        assert api.post_events([
            track("Try-On Started", kiosk), track("Frame Applied", kiosk, sku="G-1"),
            as_user, track("Try-On Started", other),
        ]).json()["inserted"] == 4
        token = api.client.post("/v1/handoff", json={"anonymous_id": kiosk},
                                headers=api.headers()).json()["token"]
        api.client.post(f"/v1/handoff/{token}/claim", json={"anonymous_id": phone},
                        headers=api.headers())

        r = api.client.delete(f"/v1/shoppers/{user}", headers=api.headers("admin"))
        assert r.status_code == 200, r.text
        erased = r.json()["erased"]
        assert erased["events"] == 3 and erased["handoff_tokens"] == 1
        assert erased["shopper_aliases"] == 2 and erased["linked_ids"] == 3
        # every feature's eraser ran (the app's explicit list), offers included
        assert {"offers", "offer_impressions", "coupons", "shopper_groups"} <= erased.keys()
        for sid in (kiosk, phone, user):
            assert count(api, Event.anonymous_id == sid) == 0
            assert count(api, Event.user_id == sid) == 0
        assert count(api, Event.anonymous_id == other) == 1  # nobody else touched
        with api.sessionmaker() as s:
            assert s.scalar(select(func.count()).select_from(HandoffToken).where(
                HandoffToken.shopper_id == kiosk)) == 0
            log = s.scalars(select(ErasureLog).where(
                ErasureLog.subject_hash == subject_hash(user))).one()
            assert user not in str(log.counts)

    def test_requires_admin_and_unknown_shopper_erases_nothing(self, api: Api) -> None:
        sid = new_id("n-")
        assert api.client.delete(f"/v1/shoppers/{sid}", headers=api.headers()).status_code == 403
        r = api.client.delete(f"/v1/shoppers/{sid}", headers=api.headers("admin"))
        assert r.status_code == 200 and r.json()["erased"]["events"] == 0


class TestRetention:
    def test_purges_only_events_older_than_n_days(self, api: Api) -> None:
        now = datetime.now(UTC)
        sid = new_id("r-")
        old = {**track("Try-On Started", sid), "timestamp": (now - timedelta(days=40)).isoformat()}
        edge = {**track("Try-On Started", sid),
                "timestamp": (now - timedelta(days=29)).isoformat()}
        new = track("Try-On Started", sid)
        assert api.post_events([old, edge, new]).json()["inserted"] == 3
        r = api.client.post("/v1/admin/retention/run?days=30", headers=api.headers("admin"))
        assert r.status_code == 200, r.text
        assert r.json()["days"] == 30 and r.json()["deleted"]["events"] >= 1
        with api.sessionmaker() as s:
            left = set(s.scalars(select(Event.message_id).where(Event.anonymous_id == sid)))
        assert left == {edge["message_id"], new["message_id"]}

    def test_drops_hand_off_tokens_a_day_after_expiry(self, api: Api) -> None:
        stale, fresh = new_id("k-"), new_id("k-")
        for sid in (stale, fresh):
            assert api.client.post("/v1/handoff", json={"anonymous_id": sid},
                                   headers=api.headers()).status_code == 201
        with api.sessionmaker.begin() as s:
            s.execute(update(HandoffToken).where(HandoffToken.shopper_id == stale).values(
                expires_at=datetime.now(UTC) - timedelta(days=2)))
        deleted = api.client.post("/v1/admin/retention/run",
                                  headers=api.headers("admin")).json()["deleted"]
        assert deleted["handoff_tokens"] >= 1
        with api.sessionmaker() as s:
            left = set(s.scalars(select(HandoffToken.shopper_id).where(
                HandoffToken.shopper_id.in_([stale, fresh]))))
        assert left == {fresh}

    def test_runs_at_start_up_and_needs_admin(self, api: Api) -> None:
        assert api.client.post("/v1/admin/retention/run",
                               headers=api.headers("analyst")).status_code == 403
        with api.sessionmaker() as s:
            kinds = set(s.scalars(select(ErasureLog.kind)))
        assert "retention" in kinds  # the lifespan's start-up run
        r = api.client.post("/v1/admin/retention/run", headers=api.headers("admin"))
        assert r.json()["days"] == 365

    def test_days_whose_cutoff_is_before_year_one_are_422(self, api: Api) -> None:
        for days in (1_000_000, 99_999_999_999):  # were OverflowErrors: 500
            r = api.client.post("/v1/admin/retention/run", params={"days": days},
                                headers=api.headers("admin"))
            assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
