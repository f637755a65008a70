"""Linked shopper ids (hand-off claims, identify calls) and their groups, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from service.handoff.service import claim, mint
from service.identity.models import ShopperGroup
from service.identity.service import rebuild_groups, resolve_shopper_ids
from tests.service.analytics.support import identity_events, migrated, store


@pytest.fixture(scope="module")
def db(db_url):
    """k1 (kiosk) hands off to the phone p1, which identifies as u1; k2, p2 stay alone."""
    with migrated(db_url) as factory:
        store(factory, identity_events()[:2])
        with factory.begin() as s:
            token = mint(s, "k1", ttl_s=600).token
            claim(s, token, "p1")
        store(factory, identity_events()[2:])
        yield factory


class TestGroups:
    def test_group_matches_resolve_shopper_ids(self, db) -> None:
        with db() as s:
            assert sorted(resolve_shopper_ids(s, "u1")) == ["k1", "p1", "u1"]

    def test_groups_rebuild_equals_incremental(self, db) -> None:
        with db() as s:
            before = sorted(s.execute(select(ShopperGroup.__table__)).all())
            n = rebuild_groups(s)
            after = sorted(s.execute(select(ShopperGroup.__table__)).all())
            s.rollback()
        assert n == len(before) > 0 and after == before
        assert ("u1", "k1") in before and ("p1", "k1") in before
