"""Hostile properties through POST /v1/events: face crops, meshes in any shape, unknown keys.

Each is removed before storage with a warning in the event's result; the event is kept.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from service.touchpoints.models import Event
from tests.service.harness import Api
from tests.service.touchpoints.support import new_id, track

MESH = [[0.41 + i / 1000, 0.52 - i / 2000, -0.01 * (i % 7)] for i in range(478)]


def stored(api: Api, mid: str) -> Event:
    with api.sessionmaker() as s:
        return s.scalars(select(Event).where(Event.message_id == mid)).one()


def post_one(api: Api, ev: dict[str, Any]) -> dict[str, Any]:
    body = api.post_events([ev]).json()
    assert body["inserted"] == 1, body
    return dict(body["results"][0])


def face_crop(shared_data: Path) -> str:
    """A real JPEG face crop from the shared data, base64-encoded as a client would."""
    photo = next(p for p in sorted((shared_data / "faces").rglob("*.jpg")))
    return base64.b64encode(photo.read_bytes()[:12_000]).decode()


class TestPrivacyFilter:
    def test_base64_face_crop_and_data_uri_removed(self, api: Api, shared_data: Path) -> None:
        crop = face_crop(shared_data)
        ev = track("Snapshot Captured", new_id("p-"), sku="G-1", frame_id=3,
                   name=crop[:1500], category="data:image/jpeg;base64," + crop[:300])
        ev["context"] = {"thumb": crop[:1200], "screen": {"width": 1280, "height": 800},
                         "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
                                       "(KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36"}
        res = post_one(api, ev)
        assert any("encoded binary data" in w for w in res["warnings"]), res
        row = stored(api, ev["message_id"])
        assert row.properties == {"sku": "G-1", "frame_id": 3, "consent": False}
        assert row.context == {"screen": {"width": 1280, "height": 800},
                               "user_agent": ev["context"]["user_agent"]}
        assert crop[:100] not in json.dumps(row.properties) + json.dumps(row.context)

    def test_landmarks_in_any_shape_removed(self, api: Api) -> None:
        points = [{"x": p[0], "y": p[1], "z": p[2]} for p in MESH]
        shapes: dict[str, Any] = {
            "pd_mm": {"landmarks": MESH},                        # a dict holding them
            "face_width_mm": json.dumps(MESH),                   # a JSON string of points
            "size_band": json.dumps({"mesh": MESH[:5]})[:1900],  # a JSON object by key
            "monk_index": ",".join(f"{v:.3f}" for p in MESH[:40] for v in p),  # CSV text
            "skin_tone": {str(i): p for i, p in enumerate(MESH[:30])},  # dict of points
            "measurements": {"pd_mm": 63.0, "pts": [[1.0, 2.0]]},  # nested lists, tiny
            "face_measurements": {"a": points[:2]},              # point objects
            "source": [0.1] * 17,                                # a long numeric array
        }
        ev = track("Frame Applied", new_id("p-"), sku="G-1", consent=True,
                   recommended_frame_width_mm=138.5, **shapes)
        res = post_one(api, ev)
        assert any("landmark" in w for w in res["warnings"]), res
        assert any("numeric arrays" in w for w in res["warnings"]), res
        row = stored(api, ev["message_id"])
        assert row.properties == {
            "sku": "G-1", "consent": True, "recommended_frame_width_mm": 138.5,
            "measurements": {"pd_mm": 63.0}, "face_measurements": {},
        }, row.properties

    def test_unknown_keys_removed_with_a_warning_event_kept(self, api: Api) -> None:
        ev = track("Try-On Dwell", new_id("p-"), dwell_ms=1200, sku="G-1", reason="switch",
                   debug={"ok": 1}, email="someone@example.com", session_ms=900)
        res = post_one(api, ev)
        assert res["warnings"] == [
            "removed properties not in the Try-On Dwell schema: properties.debug, properties.email"
        ]
        row = stored(api, ev["message_id"])
        assert row.properties == {"sku": "G-1", "dwell_ms": 1200, "consent": False,
                                  "reason": "switch", "session_ms": 900}

    def test_order_lines_allow_listed_and_json_types_kept(self, api: Api) -> None:
        ev = track("Order Completed", new_id("p-"), order_id="o-77", total=10,
                   products=[{"sku": "G-1", "shade": "ruby", "price": 10, "quantity": 1,
                              "face": "x"}])
        res = post_one(api, ev)
        assert res["warnings"] == [
            "removed properties not in the Order Completed schema: properties.products[0].face"
        ]
        shade = track("Shade Applied", new_id("p-"), shade="ruby", monk_index="4",
                      skin_tone_band=5, consent=True, intensity=0.4)
        assert post_one(api, shade).get("warnings", []) == []
        props = stored(api, shade["message_id"]).properties
        assert props["monk_index"] == "4" and props["skin_tone_band"] == 5
        assert props["intensity"] == 0.4
