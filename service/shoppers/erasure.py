"""erase_shopper(): delete a shopper's events and derived rows; features register erasers."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session

from service.analytics import groups
from service.db.models import ErasureLog, Event, HandoffToken, ShopperAlias
from service.touchpoints.identity import resolve_shopper_ids

log = logging.getLogger(__name__)

# fn(session, shopper_ids) -> {table or kind: rows deleted}; runs in the erasure's transaction.
Eraser = Callable[[Session, Sequence[str]], Mapping[str, int]]
_ERASERS: dict[str, Eraser] = {}


def register_eraser(fn: Eraser, *, name: str | None = None) -> Eraser:
    """Register a feature's eraser for its derived rows (usable as a decorator; idempotent)."""
    _ERASERS[name or f"{fn.__module__}.{fn.__qualname__}"] = fn
    return fn


def registered_erasers() -> dict[str, Eraser]:
    return dict(_ERASERS)


def subject_hash(shopper_id: str) -> str:
    return hashlib.sha256(shopper_id.encode("utf-8")).hexdigest()


def erase_shopper(session: Session, shopper_id: str) -> dict[str, int]:
    """Erase every id linked to shopper_id: events, hand-off tokens, aliases, derived data.

    Linked ids (hand-off, identify) are the same person, so they are erased together. The
    caller's transaction makes it all-or-nothing; only a hash of the id is logged.
    """
    ids = resolve_shopper_ids(session, shopper_id)
    counts: dict[str, int] = {}
    counts["events"] = session.execute(
        delete(Event).where(
            or_(Event.shopper_id.in_(ids), Event.anonymous_id.in_(ids), Event.user_id.in_(ids))
        )
    ).rowcount
    counts["handoff_tokens"] = session.execute(
        delete(HandoffToken).where(
            or_(HandoffToken.shopper_id.in_(ids), HandoffToken.claimed_by.in_(ids))
        )
    ).rowcount
    counts["shopper_aliases"] = session.execute(
        delete(ShopperAlias).where(
            or_(ShopperAlias.shopper_id.in_(ids), ShopperAlias.alias_id.in_(ids))
        )
    ).rowcount
    # Analytics' canonical-id rows for these ids (identity data; the rollups hold no id).
    counts.update(groups.erase(session, ids))
    for name, fn in _ERASERS.items():
        for key, n in (fn(session, ids) or {}).items():
            counts[key] = counts.get(key, 0) + int(n)
        log.debug("eraser %s ran", name)
    session.add(
        ErasureLog(
            subject_hash=subject_hash(shopper_id),
            kind="shopper",
            counts={"linked_ids": len(ids), **counts},
        )
    )
    return {"linked_ids": len(ids), **counts}
