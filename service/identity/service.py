"""Linking shopper ids (hand-off, identify, alias), resolving a group, and erasing it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, or_, select
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.dml import affected
from service.db.upsert import insert_for
from service.identity.models import ShopperAlias, ShopperGroup

# A link graph this big means something is wrong (a shared kiosk id identified as many users);
# stop growing rather than merge the whole store into one shopper.
MAX_LINKED_IDS = 64


# Serializes group updates on PostgreSQL so two links made at once into one group (a
# hand-off claim and an identify) never leave it with two canonical ids.
_PG_LOCK_KEY = 0x67726F757073  # "groups"


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
    stmt = insert_for(session, ShopperAlias.__table__).on_conflict_do_nothing(
        index_elements=["shopper_id", "alias_id"]
    )
    t = ShopperAlias.__table__
    new = session.execute(stmt.returning(t.c.shopper_id, t.c.alias_id), list(rows.values())).all()
    if new:
        # Analytics counts a linked group as one shopper: re-derive the touched groups.
        refresh_groups(session, sorted({x for pair in new for x in pair}))
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


def _upsert(session: Session | Connection, mapping: dict[str, str]) -> None:
    if not mapping:
        return
    table = ShopperGroup.__table__
    rows = [{"shopper_id": k, "canonical_id": v} for k, v in sorted(mapping.items())]
    for i in range(0, len(rows), 1000):
        stmt = insert_for(session, table).values(rows[i : i + 1000])
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["shopper_id"], set_={"canonical_id": stmt.excluded.canonical_id}
            )
        )


def refresh_groups(session: Session, ids: Iterable[str]) -> None:
    """Re-derive the groups of `ids` after new links (same transaction as the links)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
    mapping: dict[str, str] = {}
    for shopper in ids:
        if shopper in mapping:
            continue
        group = resolve_shopper_ids(session, shopper)
        canonical = min(group)
        mapping.update(dict.fromkeys(group, canonical))
    _upsert(session, mapping)


def erase_identity(session: Session, ids: Sequence[str]) -> dict[str, int]:
    """The erased ids' links and group rows (the erasure list runs this last)."""
    aliases = affected(
        session,
        delete(ShopperAlias).where(
            or_(ShopperAlias.shopper_id.in_(ids), ShopperAlias.alias_id.in_(ids))
        ),
    )
    groups = affected(session, delete(ShopperGroup).where(ShopperGroup.shopper_id.in_(ids)))
    return {"shopper_aliases": aliases, "shopper_groups": groups}


def rebuild_groups(session: Session | Connection) -> int:
    """All groups from shopper_aliases (union-find): migration back-fill and repair."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in session.execute(select(ShopperAlias.shopper_id, ShopperAlias.alias_id)):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)  # the root is always the group's smallest id
    session.execute(delete(ShopperGroup))
    mapping = {x: find(x) for x in list(parent)}
    _upsert(session, mapping)
    return len(mapping)


def link_from_events(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """After-insert hook: an event carrying both ids says they are one shopper (Segment)."""
    pairs = {(r["anonymous_id"], r["user_id"]) for r in rows if r.get("user_id")}
    if pairs:
        link_shoppers(session, pairs, source="event")


def purge_identity(session: Session, cutoff: datetime, _now: datetime) -> dict[str, int]:
    """Links made before the retention cutoff; the groups are re-derived from what is left."""
    n = affected(session, delete(ShopperAlias).where(ShopperAlias.created_at < cutoff))
    if n:
        rebuild_groups(session)
    return {"shopper_aliases": n or 0}
