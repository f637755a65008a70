"""The analytics endpoints over real HTTP: scopes, formats, bad parameters."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.service.analytics.support import fixture_events, store
from tests.service.harness import LiveServer


@pytest.fixture(scope="module")
def client(live_server: LiveServer, keys: dict[str, str]) -> Iterator[httpx.Client]:
    """The suite's live server holding the hand-computed fixture, with analyst/kiosk keys."""
    store(live_server.app.state.runtime.sessions, fixture_events())
    with live_server.client() as c:
        c.analyst, c.kiosk = keys["analyst"], keys["kiosk"]  # type: ignore[attr-defined]
        yield c


class TestEndpoints:
    def test_analyst_scope_required(self, client) -> None:
        assert client.get("/v1/analytics/nps").status_code == 401
        r = client.get("/v1/analytics/nps", headers={"X-API-Key": client.kiosk})
        assert r.status_code == 403

    def test_json_and_exports(self, client) -> None:
        h = {"X-API-Key": client.analyst}
        body = client.get(
            "/v1/analytics/funnel",
            headers=h,
            params={"window_hours": 72, "product_type": "glasses"},
        ).json()
        assert {r["sku"]: r["ordered"] for r in body["rows"]} == {"RB-1": 2, "RB-2": 1}
        assert {r["sku"]: r["revenue"] for r in body["rows"]} == {"RB-1": 219.5, "RB-2": 160.0}
        assert body["totals"] == {"revenue": 379.5, "currency": "EUR"}
        assert body["filters"]["product_type"] == "glasses"
        lips = client.get(
            "/v1/analytics/funnel", headers=h, params={"product_type": "lipstick"}
        ).json()
        assert {r["sku"] for r in lips["rows"]} == {"ruby", "nude"}
        assert lips["totals"] == {"revenue": 0.0, "currency": None}
        csv = client.get("/v1/analytics/products", headers=h, params={"format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0].startswith("sku,variant,try_ons")
        lines = client.get(
            "/v1/analytics/nps", headers=h, params={"format": "jsonl"}
        ).text.splitlines()
        assert json.loads(lines[0])["channel"] == "kiosk"
        import pyarrow.parquet as pq

        pq_body = client.get(
            "/v1/analytics/products",
            headers=h,
            params={"format": "parquet", "channel": "kiosk", "group_by": ""},
        ).content
        table = pq.read_table(io.BytesIO(pq_body)).to_pylist()
        assert table[0]["sku"] == "RB-1" and table[0]["try_ons"] == 3

    def test_fit_gap_against_the_bundled_catalog(self, client) -> None:
        body = client.get("/v1/analytics/fit-gap", headers={"X-API-Key": client.analyst}).json()
        frames = [f["frame_width_mm"] for f in body["frames"]]
        assert frames and body["shoppers"] == 4
        tol = body["tolerance_mm"]
        expected = sum(
            not any(abs(f - 0.9 * w) <= tol for f in frames) for w in (130, 140, 141, 160)
        )
        assert body["shoppers_without_fit"] == expected
        csv = client.get(
            "/v1/analytics/fit-gap", headers={"X-API-Key": client.analyst}, params={"format": "csv"}
        )
        assert csv.text.startswith("lo_mm,hi_mm,shoppers")

    def test_bad_group_by_and_range(self, client) -> None:
        h = {"X-API-Key": client.analyst}
        assert (
            client.get("/v1/analytics/products", headers=h, params={"group_by": "x"}).status_code
            == 422
        )
        r = client.get(
            "/v1/analytics/nps",
            headers=h,
            params={"start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"},
        )
        assert r.status_code == 422

    @pytest.mark.parametrize(
        "params",
        [
            {"start": "0001-01-01T00:00:00+23:59"},  # before year 1 in UTC
            {"end": "9999-12-31T23:59:59-23:59"},  # after year 9999 in UTC
            {"start": "9999-12-31T00:00:00", "end": "9999-12-31T12:00:00"},  # + window
            {"end": "0001-01-01T00:00:00Z"},  # a day before it overflowed (the lake's days)
            {"start": "1999-12-31T23:59:59Z"},  # before any event can be
        ],
    )
    @pytest.mark.parametrize(
        "path", ["products", "funnel", "shades", "nps", "fit-gap"]
    )
    def test_times_out_of_range_are_422(self, client, path, params) -> None:
        # Converting these to UTC (or adding the conversion window) overflowed: 500.
        r = client.get(f"/v1/analytics/{path}", headers={"X-API-Key": client.analyst},
                       params=params)
        assert r.status_code == 422, r.text
        assert "between 2000-01-01 and 9999-01-01" in r.json()["error"]["message"]

    def test_no_server_side_charts(self, client) -> None:
        # One chart stack: the dashboard draws the reports' JSON itself.
        r = client.get("/v1/analytics/charts/funnel.png", headers={"X-API-Key": client.analyst})
        assert r.status_code == 404


def test_endpoint_metrics_counts(client) -> None:
    h = {"X-API-Key": client.analyst}
    params = {"group_by": "", "start": "2026-03-02T06:00:00Z"}
    full = client.get("/v1/analytics/products", headers=h, params=params).json()["rows"]
    fast = client.get(
        "/v1/analytics/products", headers=h, params={**params, "metrics": "counts"}
    ).json()["rows"]
    assert [(r["sku"], r["try_ons"]) for r in fast] == [(r["sku"], r["try_ons"]) for r in full]
    assert "unique_shoppers" not in fast[0] and fast[0]["dwell_mean_ms"] > 0
    shades = client.get("/v1/analytics/shades", headers=h, params={"metrics": "counts"}).json()[
        "rows"
    ]
    assert {r["shade"]: r["applications"] for r in shades} == {"ruby": 3, "nude": 1}
    bad = client.get("/v1/analytics/products", headers=h, params={"metrics": "fast"})
    assert bad.status_code == 422


