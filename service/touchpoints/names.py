"""Every touchpoint event name, and the groups of them that reports and rules share."""

from __future__ import annotations

from enum import StrEnum


class EventName(StrEnum):
    TRY_ON_STARTED = "Try-On Started"
    FRAME_APPLIED = "Frame Applied"
    SHADE_APPLIED = "Shade Applied"
    TRY_ON_DWELL = "Try-On Dwell"
    SNAPSHOT_CAPTURED = "Snapshot Captured"
    PRODUCT_ADDED = "Product Added"
    ORDER_COMPLETED = "Order Completed"
    FEEDBACK_SUBMITTED = "Feedback Submitted"
    SUPPORT_ISSUE_OPENED = "Support Issue Opened"
    SUPPORT_ISSUE_RESOLVED = "Support Issue Resolved"
    OFFER_SHOWN = "Offer Shown"
    OFFER_ACCEPTED = "Offer Accepted"
    OFFER_REJECTED = "Offer Rejected"


# A try-on is a product or shade actually drawn on the face; "Try-On Started" only marks the
# session (and repeats the first sku), so it is not counted as one.
TRY_ON_EVENTS: tuple[EventName, ...] = (EventName.FRAME_APPLIED, EventName.SHADE_APPLIED)
OFFER_EVENTS: frozenset[EventName] = frozenset(
    {EventName.OFFER_SHOWN, EventName.OFFER_ACCEPTED, EventName.OFFER_REJECTED}
)
