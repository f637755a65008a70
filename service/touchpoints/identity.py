"""Shopper identity links (hand-off claims, Segment identify/alias) and their resolution."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.analytics import groups
from service.db.base import utcnow
from service.db.models import ShopperAlias

# A link graph this big means something is wrong (a shared kiosk id identified as many users);
# stop growing rather than merge the whole store into one shopper.
MAX_LINKED_IDS = 64


def _insert(session: Session):  # type: ignore[no-untyped-def]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(ShopperAlias.__table__)


def link_shoppers(session: Session, pairs: Iterable[tuple[str, str]], *, source: str) -> int:
    """Record that each (a, b) pair is the same shopper; idempotent. Returns new links."""
    now = utcnow()
    rows = {}
    for a, b in pairs:
        if a and b and a != b:
            lo, hi = sorted((a, b))  # undirected: one row per pair
            rows[(lo, hi)] = {"shopper_id": lo, "alias_id": hi, "source": source, "created_at": now}
    if not rows:
        return 0
    stmt = _insert(session).on_conflict_do_nothing(index_elements=["shopper_id", "alias_id"])
    t = ShopperAlias.__table__
    new = session.execute(stmt.returning(t.c.shopper_id, t.c.alias_id), list(rows.values())).all()
    if new:
        # Analytics counts a linked group as one shopper: re-derive the touched groups.
        groups.refresh(session, sorted({x for pair in new for x in pair}))
    return len(new)


def resolve_shopper_ids(session: Session, shopper_id: str) -> list[str]:
    """Every id linked to shopper_id (itself first, then the rest sorted).

    Offers and erasure use this so a phone that claimed a kiosk hand-off sees, and erases,
    the kiosk's history too.
    """
    seen = {shopper_id}
    frontier = {shopper_id}
    while frontier and len(seen) < MAX_LINKED_IDS:
        rows = session.execute(
            select(ShopperAlias.shopper_id, ShopperAlias.alias_id).where(
                or_(ShopperAlias.shopper_id.in_(frontier), ShopperAlias.alias_id.in_(frontier))
            )
        ).all()
        found = {x for row in rows for x in row} - seen
        seen |= found
        frontier = found
    return [shopper_id, *sorted(seen - {shopper_id})]
