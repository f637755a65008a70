"""Segment HTTP Tracking API compatibility, driven by the real Node.js SDK
(@segment/analytics-node).

tests/node/send_segment.mjs sends a JSON file of messages with the SDK (track/identify),
flushes with closeAndFlush and prints what the SDK reported. `make setup-test` installs the
SDK (`npm ci` in tests/node); without node or tests/node/node_modules this module skips.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service.identity.service import resolve_shopper_ids
from service.touchpoints.models import Event
from tests.service.harness import Api, LiveServer
from tests.service.touchpoints.support import new_id, server_settings

__all__ = ["server_settings"]  # this module's live server runs on db_url

NODE_DIR = Path(__file__).resolve().parents[2] / "node"
SCRIPT = NODE_DIR / "send_segment.mjs"
SDK_DIR = NODE_DIR / "node_modules" / "@segment" / "analytics-node"
NODE = shutil.which("node")


def _node_major() -> int:
    if NODE is None:
        return 0
    out = subprocess.run([NODE, "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.match(r"v(\d+)\.", out.strip())
    return int(m.group(1)) if m else 0


pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed (Node.js >= 20 is needed)"),
    pytest.mark.skipif(
        NODE is not None and not SDK_DIR.is_dir(),
        reason="tests/node/node_modules is missing: run `make setup-test` "
        "(or `cd tests/node && npm ci --no-audit --no-fund`)",
    ),
    pytest.mark.skipif(
        NODE is not None and SDK_DIR.is_dir() and _node_major() < 20,
        reason="@segment/analytics-node needs Node.js >= 20",
    ),
]


def send(live_server: LiveServer, key: str, messages: list[dict[str, Any]],
         tmp_path: Path) -> dict[str, Any]:
    """Runs the Node script on `messages`; returns what it printed (results, responses,
    errors)."""
    path = tmp_path / f"messages-{new_id()[:8]}.json"
    path.write_text(json.dumps(messages))
    assert NODE is not None
    proc = subprocess.run([NODE, str(SCRIPT), live_server.url, key, str(path)],
                          cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip(), f"no output (rc {proc.returncode}):\n{proc.stderr}"
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    report["returncode"] = proc.returncode
    report["stderr"] = proc.stderr
    return report


def rows_for(api: Api, shopper: str) -> list[Event]:
    with api.sessionmaker() as s:
        stmt = select(Event).where(Event.anonymous_id == shopper).order_by(Event.id)
        return list(s.scalars(stmt))


def rejected_counts(live_server: LiveServer) -> dict[str, float]:
    """reason -> tryon_events_rejected_total for source "segment", from /metrics."""
    text = httpx.get(f"{live_server.url}/metrics", timeout=30).text
    counts: dict[str, float] = {}
    pattern = re.compile(
        r'^tryon_events_rejected_total\{reason="([^"]+)",source="segment"\} (\S+)$')
    for line in text.splitlines():
        if m := pattern.match(line):
            counts[m.group(1)] = float(m.group(2))
    return counts


class TestSegmentNodeSdk:
    def test_valid_stored_once_with_numbers_and_bad_ones_counted_and_listed(
        self, api: Api, live_server: LiveServer, tmp_path: Path
    ) -> None:
        shopper, user, order_id = new_id("node-"), new_id("user-"), new_id("o-")
        valid: list[dict[str, Any]] = [
            {"type": "track", "messageId": new_id(), "anonymousId": shopper,
             "event": "Try-On Started",
             "properties": {"sku": "G-7", "channel": "kiosk", "store_id": "berlin-1"}},
            {"type": "identify", "messageId": new_id(), "anonymousId": shopper,
             "userId": user, "traits": {"plan": "vip"}},
            {"type": "track", "messageId": new_id(), "anonymousId": shopper,
             "event": "Product Added",
             "properties": {"sku": "G-1", "price": 119, "currency": "EUR", "quantity": 2}},
            {"type": "track", "messageId": new_id(), "anonymousId": shopper,
             "event": "Order Completed",
             "properties": {"order_id": order_id, "currency": "EUR", "total": 64.5,
                            "products": [{"sku": "G-1", "price": 22.5, "quantity": 3}]}},
            {"type": "track", "messageId": new_id(), "anonymousId": shopper,
             "event": "Feedback Submitted", "properties": {"nps": 9}},
        ]
        # The drops; no messageId: the SDK makes one (reported back by the script).
        bad: list[dict[str, Any]] = [
            {"type": "track", "anonymousId": shopper, "event": "Not A Touchpoint"},
            {"type": "track", "anonymousId": shopper, "event": "Feedback Submitted",
             "properties": {"nps": 11}},
            {"type": "track", "anonymousId": shopper, "event": "Product Added",
             "properties": {"sku": "G-1", "price": 119, "currency": "eur"}},
            {"type": "track", "anonymousId": shopper, "event": "Order Completed",
             "properties": {"sku": "G-1", "total": 119, "currency": "EUR"}},
        ]
        before = rejected_counts(live_server)

        report = send(live_server, api.keys["kiosk"], valid + bad, tmp_path)
        # Like Segment, the service answers 200 to the batch and drops invalid messages:
        # the SDK reports every message delivered, with no error.
        assert report["returncode"] == 0, report
        assert report["errors"] == [] and all(r["ok"] for r in report["results"]), report
        assert [(r["status"], r["messages"]) for r in report["responses"]] == [
            (200, len(valid) + len(bad))], report
        assert report["responses"][0]["url"] == f"{live_server.url}/v1/batch"
        sent_ids = [r["messageId"] for r in report["results"]]
        assert sent_ids[:len(valid)] == [m["messageId"] for m in valid]
        bad_ids = sent_ids[len(valid):]
        assert all(bad_ids) and len(set(bad_ids)) == len(bad)

        # A client retry of the valid ones (same messageIds): still stored once.
        again = send(live_server, api.keys["kiosk"], valid, tmp_path)
        assert again["returncode"] == 0 and again["errors"] == [], again

        rows = rows_for(api, shopper)
        tracks = [m for m in valid if m["type"] == "track"]
        assert sorted(r.message_id for r in rows) == sorted(m["messageId"] for m in tracks)
        assert [r.event for r in rows] == [m["event"] for m in tracks]
        assert all(r.source == "segment" for r in rows)
        stored = {r.event: r for r in rows}
        started = stored["Try-On Started"]
        assert (started.sku, started.channel, started.store_id) == ("G-7", "kiosk", "berlin-1")
        assert started.context["library"]["name"] == "@segment/analytics-node"

        # Numbers sent as JSON numbers are stored as numbers, not strings.
        added = stored["Product Added"].properties
        assert added["price"] == 119 and isinstance(added["price"], int)
        assert added["quantity"] == 2 and isinstance(added["quantity"], int)
        order = stored["Order Completed"].properties
        assert order["order_id"] == order_id
        assert order["total"] == 64.5 and isinstance(order["total"], float)
        (product,) = order["products"]
        assert product["sku"] == "G-1"
        assert product["price"] == 22.5 and isinstance(product["price"], float)
        assert product["quantity"] == 3 and isinstance(product["quantity"], int)
        nps = stored["Feedback Submitted"].properties["nps"]
        assert nps == 9 and isinstance(nps, int)

        # identify linked the anonymous id to the user id.
        with api.sessionmaker() as s:
            assert resolve_shopper_ids(s, user) == [user, shopper]

        # The bad ones: counted by reason in /metrics ...
        after = rejected_counts(live_server)
        delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
        assert {k: v for k, v in delta.items() if v} == {"unknown_event": 1, "invalid": 3}, after

        # ... and listed for admins (not for a kiosk key), without ids or values.
        c = api.client
        assert c.get("/v1/admin/rejections", headers={"X-API-Key": api.keys["kiosk"]}
                     ).status_code == 403
        r = c.get("/v1/admin/rejections", headers={"X-API-Key": api.keys["admin"]},
                  params={"limit": 1000})
        assert r.status_code == 200
        body = r.json()
        mine = {item["message_id"]: item for item in body["items"]
                if item["message_id"] in bad_ids}
        assert set(mine) == set(bad_ids), body
        listed = [(mine[mid]["event"], mine[mid]["code"]) for mid in bad_ids]
        assert listed == [("Not A Touchpoint", "unknown_event"),
                          ("Feedback Submitted", "invalid"),
                          ("Product Added", "invalid"),
                          ("Order Completed", "invalid")]
        assert all(item["source"] == "segment" for item in mine.values())
        assert "properties.nps" in mine[bad_ids[1]]["message"]
        assert not any(item["message_id"] in sent_ids[:len(valid)] for item in body["items"])
        text = json.dumps(list(mine.values()))
        assert shopper not in text and '"eur"' not in text  # no ids, no values

    def test_kiosk_scope_is_required(self, api: Api, live_server: LiveServer,
                                     tmp_path: Path) -> None:
        shopper = new_id("node-")
        msg = {"type": "track", "anonymousId": shopper, "event": "Try-On Started"}
        for key, status in (("not-a-key", 401), (api.keys["analyst"], 403)):
            report = send(live_server, key, [msg], tmp_path)
            assert report["returncode"] == 1, report
            assert [r["status"] for r in report["responses"]] == [status], report
            (result,) = report["results"]
            assert not result["ok"] and str(status) in (result["error"] or ""), report
        assert rows_for(api, shopper) == []
