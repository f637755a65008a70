"""erase_shopper(): delete every row about a shopper, through the app's explicit eraser list."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from service.identity.service import resolve_shopper_ids
from service.shoppers.models import ErasureLog


@dataclass(frozen=True)
class Eraser:
    """One feature's erasure: the tables it empties of the given ids, and how.

    `tables` is checked by a test against every table of the metadata with a shopper-id
    column, so a table added later cannot be forgotten.
    """

    name: str
    tables: tuple[str, ...]
    erase: Callable[[Session, Sequence[str]], Mapping[str, int]]


def subject_hash(shopper_id: str) -> str:
    return hashlib.sha256(shopper_id.encode("utf-8")).hexdigest()


def erase_shopper(
    session: Session, shopper_id: str, erasers: Sequence[Eraser]
) -> dict[str, int]:
    """Erase every id linked to shopper_id with each eraser in order (identity last).

    Linked ids (hand-off, identify) are the same person, so they are erased together. The
    caller's transaction makes it all-or-nothing; only a hash of the id is logged.
    """
    ids = resolve_shopper_ids(session, shopper_id)
    counts: dict[str, int] = {}
    for eraser in erasers:
        for key, n in eraser.erase(session, ids).items():
            counts[key] = counts.get(key, 0) + int(n)
    session.add(
        ErasureLog(
            subject_hash=subject_hash(shopper_id),
            kind="shopper",
            counts={"linked_ids": len(ids), **counts},
        )
    )
    return {"linked_ids": len(ids), **counts}
