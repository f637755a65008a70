"""Helpers for the tests of the event pipeline (ingest, hand-off, erasure): event builders
and a `server_settings` that puts the suite's live server on the module's `db_url`.

A module whose server must run on both databases imports the fixture by name:
`from tests.service.touchpoints.support import server_settings  # noqa: F401`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from service.settings import Settings


def new_id(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def track(event: str, shopper: str, **props: Any) -> dict[str, Any]:
    """A valid POST /v1/events item."""
    return {
        "message_id": new_id(),
        "event": event,
        "anonymous_id": shopper,
        "channel": "kiosk",
        "timestamp": datetime.now(UTC).isoformat(),
        "properties": props,
    }


@pytest.fixture(scope="module")
def server_settings(db_url: str) -> Settings:
    """The live server on db_url, with the retention run (365 days) at start-up."""
    return Settings(database_url=db_url, redis_url=None, demo_api_key="", retention_days=365)
