"""Retention (POST /v1/admin/retention/run, and the start-up run) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from service.handoff.models import HandoffToken
from service.shoppers.models import ErasureLog
from service.touchpoints.models import Event
from tests.service.harness import Api
from tests.service.touchpoints.support import new_id, server_settings, track

__all__ = ["server_settings"]  # this module's live server runs on db_url


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
        for sid in (stale, fresh):  # a kiosk mints for shoppers it served
            ev = {"event": "Try-On Started", "message_id": new_id(), "anonymous_id": sid,
                  "channel": "kiosk", "properties": {}}
            assert api.post_events([ev]).status_code == 200
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
