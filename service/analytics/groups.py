"""Canonical shopper per linked group (analytics_shopper_groups), kept in step with the links."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.analytics.models import ShopperGroup
from service.db.models import ShopperAlias

# Serializes group updates on PostgreSQL so two links made at once into one group (a
# hand-off claim and an identify) never leave it with two canonical ids.
_PG_LOCK_KEY = 0x67726F757073  # "groups"


def _upsert(session: Session | Connection, mapping: dict[str, str]) -> None:
    if not mapping:
        return
    bind = session if isinstance(session, Connection) else session.get_bind()
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    table = ShopperGroup.__table__
    rows = [{"shopper_id": k, "canonical_id": v} for k, v in sorted(mapping.items())]
    for i in range(0, len(rows), 1000):
        stmt = dialect.insert(table).values(rows[i : i + 1000])
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["shopper_id"], set_={"canonical_id": stmt.excluded.canonical_id}
            )
        )


def refresh(session: Session, ids: Iterable[str]) -> None:
    """Re-derive the groups of `ids` after new links (same transaction as the links)."""
    from service.touchpoints.identity import resolve_shopper_ids

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


def erase(session: Session, ids: Sequence[str]) -> dict[str, int]:
    """The erased ids' group rows (called by service.shoppers.erasure.erase_shopper)."""
    n = session.execute(delete(ShopperGroup).where(ShopperGroup.shopper_id.in_(ids))).rowcount
    return {"shopper_groups": n}


def rebuild(session: Session | Connection) -> int:
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
