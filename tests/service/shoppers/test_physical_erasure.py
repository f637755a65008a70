"""Erasure is physical on SQLite: the erased id and free text leave the file and its WAL.

The real app on a real SQLite file: a shopper with a distinctive id and a distinctive
comment, erased over HTTP; then the raw bytes of tryon.sqlite and tryon.sqlite-wal.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from service.db.engine import checkpoint_wal
from tests.service.harness import Api
from tests.service.touchpoints.support import track


def raw_bytes(api: Api) -> bytes:
    db = Path(api.server.settings.database_url.removeprefix("sqlite:///"))
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_erased_id_and_comment_are_gone_from_the_files(api: Api) -> None:
    tag = uuid.uuid4().hex[:10]
    shopper = f"erase-me-{tag}-zq"
    comment = f"My neighbour Zebulon {tag} says the Quixotic frames pinch"
    keeper = f"keep-me-{tag}-zq"
    kept_comment = f"Kept comment Yardley {tag} about lenses"
    events = [
        track("Feedback Submitted", shopper, nps=3, comment=comment),
        track("Frame Applied", shopper, sku="G-1"),
        track("Try-On Dwell", shopper, sku="G-1", dwell_ms=4000, reason="switch"),
        track("Feedback Submitted", keeper, nps=9, comment=kept_comment),
    ]
    assert api.post_events(events).json()["inserted"] == 4
    # The rows are in the files now (WAL or database), so the check below is not vacuous.
    assert shopper.encode() in raw_bytes(api) and comment.encode() in raw_bytes(api)

    r = api.client.delete(f"/v1/shoppers/{shopper}", headers=api.headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["erased"]["events"] == 3

    data = raw_bytes(api)
    assert shopper.encode() not in data
    assert comment.encode() not in data
    assert tag.encode() + b" says" not in data
    # Another shopper's data is still there: the files read are the right ones.
    checkpoint_wal(api.app.state.runtime.engine)
    assert kept_comment.encode() in raw_bytes(api) and keeper.encode() in raw_bytes(api)
