"""Stream tickets: a short-lived, single-use secret for the WebSocket URL, so no key or
session token ever travels in a URL (browsers cannot set a WebSocket's headers).

Stored hashed in the database; spending one is one conditional UPDATE .. RETURNING, so a
ticket works on whichever replica the WebSocket lands on, once.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from service.access.keys import Principal
from service.access.models import StreamTicket
from service.db.base import utcnow
from service.db.dml import affected

TICKET_PREFIX = "wt_"
# Spent or expired tickets are deleted this long after expiry (by later issues).
TICKET_GRACE = timedelta(minutes=5)


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("utf-8")).hexdigest()


def issue_ticket(session: Session, principal: Principal, ttl_s: int) -> str:
    """A new ticket for principal, valid ttl_s seconds, once (the raw ticket is not kept)."""
    now = utcnow()
    session.execute(delete(StreamTicket).where(StreamTicket.expires_at < now - TICKET_GRACE))
    ticket = TICKET_PREFIX + secrets.token_urlsafe(24)
    session.add(
        StreamTicket(
            ticket_hash=_hash(ticket),
            key_id=principal.key_id,
            name=principal.name[:128],
            scopes=" ".join(sorted(principal.scopes)),
            rate_limit_per_minute=principal.rate_limit_per_minute,
            shopper_id=principal.shopper_id,
            token_id=principal.token_id,
            client=(principal.client or "")[:64] or None,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
    )
    session.flush()
    return ticket


def redeem_ticket(session: Session, ticket: str) -> Principal | None:
    """The principal the ticket was issued to, spending it; None when unknown, used or
    expired (atomically: concurrent redeems on any replicas get it once)."""
    if not ticket.startswith(TICKET_PREFIX) or len(ticket) > 128:
        return None
    now = utcnow()
    t = StreamTicket
    row = session.execute(
        update(t)
        .where(t.ticket_hash == _hash(ticket), t.used_at.is_(None), t.expires_at > now)
        .values(used_at=now)
        .returning(
            t.key_id, t.name, t.scopes, t.rate_limit_per_minute, t.shopper_id, t.token_id, t.client
        )
    ).first()
    if row is None:
        return None
    return Principal(
        key_id=row.key_id,
        name=row.name,
        scopes=frozenset(row.scopes.split()),
        rate_limit_per_minute=row.rate_limit_per_minute,
        shopper_id=row.shopper_id,
        token_id=row.token_id,
        client=row.client,
    )


def erase_tickets(session: Session, ids: Sequence[str]) -> dict[str, int]:
    """Erasure: a shopper's tickets."""
    stmt = delete(StreamTicket).where(StreamTicket.shopper_id.in_(ids))
    return {"stream_tickets": affected(session, stmt)}


def purge_tickets(session: Session, _cutoff: datetime, now: datetime) -> dict[str, int]:
    """Retention: tickets live seconds; every expired one goes, whatever the cutoff."""
    stmt = delete(StreamTicket).where(StreamTicket.expires_at < now - TICKET_GRACE)
    return {"stream_tickets": affected(session, stmt)}
