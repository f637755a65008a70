"""Mint and claim single-use hand-off tokens (stored as sha256; the token is never kept)."""

from __future__ import annotations

import hashlib
import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.dml import affected
from service.errors import Conflict, NotFound, ServiceError
from service.handoff.models import HandoffToken
from service.identity.service import link_shoppers, resolve_shopper_ids
from service.touchpoints.models import Event
from service.touchpoints.names import EventName


class TokenExpired(ServiceError):
    status_code = 410
    code = "handoff_expired"


class TokenUsed(Conflict):
    code = "handoff_used"


@dataclass(frozen=True, slots=True)
class MintedToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Claim:
    shopper_id: str  # the kiosk's shopper
    claimed_by: str  # the phone's
    linked_ids: list[str]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mint(
    session: Session,
    shopper_id: str,
    *,
    ttl_s: int,
    store_id: str | None = None,
    kiosk_id: str | None = None,
) -> MintedToken:
    token = secrets.token_urlsafe(24)  # 192 bits: unguessable, short enough for a QR code
    now = utcnow()
    expires_at = now + timedelta(seconds=ttl_s)
    session.add(
        HandoffToken(
            token_hash=hash_token(token),
            shopper_id=shopper_id,
            store_id=store_id,
            kiosk_id=kiosk_id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.flush()
    return MintedToken(token, expires_at)


def _raise_for(row: HandoffToken | None, now: datetime) -> None:
    if row is None:
        raise NotFound("unknown hand-off token")
    if row.claimed_at is not None:
        raise TokenUsed("this hand-off token was already used")
    if row.expires_at <= now:
        raise TokenExpired("this hand-off token has expired; mint a new one at the kiosk")


def check_usable(session: Session, token: str) -> HandoffToken:
    """The token's row if it can still be claimed (for the QR code), else the 4xx why not."""
    row = session.scalar(select(HandoffToken).where(HandoffToken.token_hash == hash_token(token)))
    now = utcnow()
    if row is None or row.claimed_at is not None or row.expires_at <= now:
        _raise_for(row, now)
    assert row is not None
    return row


def claim(session: Session, token: str, phone_shopper_id: str) -> Claim:
    """Spend the token (atomically: one conditional UPDATE) and link phone to kiosk shopper."""
    now = utcnow()
    h = hash_token(token)
    # The WHERE makes single use hold under concurrent claims on SQLite and PostgreSQL alike.
    kiosk_shopper = session.execute(
        update(HandoffToken)
        .where(
            HandoffToken.token_hash == h,
            HandoffToken.claimed_at.is_(None),
            HandoffToken.expires_at > now,
        )
        .values(claimed_at=now, claimed_by=phone_shopper_id)
        .returning(HandoffToken.shopper_id)
    ).scalar_one_or_none()
    if kiosk_shopper is None:
        _raise_for(session.scalar(select(HandoffToken).where(HandoffToken.token_hash == h)), now)
        raise NotFound("unknown hand-off token")  # unreachable; keeps the type checker honest
    link_shoppers(session, [(kiosk_shopper, phone_shopper_id)], source="handoff")
    return Claim(kiosk_shopper, phone_shopper_id, resolve_shopper_ids(session, phone_shopper_id))


def qr_png(data: str) -> bytes:
    import qrcode  # local import: only this endpoint needs it

    img = qrcode.make(data, box_size=8, border=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# Spent or expired hand-off tokens are kept a day (to answer "expired" rather than "unknown").
HANDOFF_GRACE = timedelta(days=1)


def erase_tokens(session: Session, ids: Sequence[str]) -> dict[str, int]:
    cond = or_(HandoffToken.shopper_id.in_(ids), HandoffToken.claimed_by.in_(ids))
    return {"handoff_tokens": affected(session, delete(HandoffToken).where(cond))}


def purge_tokens(session: Session, cutoff: datetime, now: datetime) -> dict[str, int]:
    """Tokens past their grace day, and any older than the retention window."""
    stale = or_(HandoffToken.expires_at < now - HANDOFF_GRACE, HandoffToken.created_at < cutoff)
    return {"handoff_tokens": affected(session, delete(HandoffToken).where(stale))}


# What the claiming phone is shown at once: the kiosk session's recent try-ons and cart.
SHORTLIST_WINDOW = timedelta(hours=24)
SHORTLIST_MAX_EVENTS = 1000


def kiosk_shortlist(
    session: Session, kiosk_shopper_id: str, now: datetime | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The kiosk shopper's last day: products and shades tried (server-counted try-ons, with
    their dwell) and the cart (Product Added not followed by an Order Completed of that sku).

    Only the kiosk shopper's own events (the token's), newest try-on first.
    """
    now = now or utcnow()
    names = (
        EventName.FRAME_APPLIED,
        EventName.SHADE_APPLIED,
        EventName.TRY_ON_DWELL,
        EventName.PRODUCT_ADDED,
        EventName.ORDER_COMPLETED,
    )
    rows = session.execute(
        select(
            Event.event,
            Event.sku,
            Event.variant,
            Event.shade,
            Event.dwell_ms,
            Event.price,
            Event.currency,
            Event.timestamp,
            Event.properties,
        )
        .where(
            Event.shopper_id == kiosk_shopper_id,
            Event.event.in_([str(n) for n in names]),
            Event.timestamp >= now - SHORTLIST_WINDOW,
        )
        .order_by(Event.timestamp, Event.id)
        .limit(SHORTLIST_MAX_EVENTS)
    ).all()
    tried: dict[tuple[Any, ...], dict[str, Any]] = {}
    cart: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        key = (r.sku, r.variant if r.shade is None else None, r.shade)
        if r.event in (EventName.FRAME_APPLIED, EventName.SHADE_APPLIED) and r.sku:
            item = tried.setdefault(
                key,
                {
                    "product_type": "lipstick" if r.shade else "glasses",
                    "sku": r.sku,
                    "variant": key[1],
                    "shade": r.shade,
                    "dwell_ms": 0,
                },
            )
            item["tried_at"] = r.timestamp.isoformat()
        elif r.event == EventName.TRY_ON_DWELL and r.sku and r.dwell_ms and key in tried:
            tried[key]["dwell_ms"] += int(r.dwell_ms)
        elif r.event == EventName.PRODUCT_ADDED and r.sku:
            props = r.properties or {}
            cart[key] = {
                "product_type": "lipstick" if r.shade else "glasses",
                "sku": r.sku,
                "variant": key[1],
                "shade": r.shade,
                "quantity": props.get("quantity", 1),
                "price": props.get("price"),
                "currency": r.currency,
                "added_at": r.timestamp.isoformat(),
            }
        elif r.event == EventName.ORDER_COMPLETED:
            lines = (r.properties or {}).get("products") or []
            ordered = {r.sku} | {ln.get("sku") for ln in lines if isinstance(ln, dict)}
            for k in [k for k in cart if k[0] in ordered]:
                del cart[k]
    shortlist = sorted(tried.values(), key=lambda i: i["tried_at"], reverse=True)
    return {"shortlist": shortlist, "cart": list(cart.values())}
