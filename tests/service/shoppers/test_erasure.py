"""Erasure (DELETE /v1/shoppers/{id}) on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from service.handoff.models import HandoffToken
from service.shoppers.erasure import subject_hash
from service.shoppers.models import ErasureLog
from service.touchpoints.models import Event
from tests.service.harness import Api
from tests.service.touchpoints.support import new_id, server_settings, track

__all__ = ["server_settings"]  # this module's live server runs on db_url


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
