"""The demo router without a browser: pages, config, static files and their security headers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.harness import ROOT

CLIENT_DEMO = ROOT / "client_demo"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = tmp_path_factory.mktemp("demo") / "t.sqlite"
    app = create_app(Settings(database_url=f"sqlite:///{db}", demo_api_key="the-demo-key"))
    with TestClient(app) as client:
        yield client


class TestPages:
    @pytest.mark.parametrize("path", ["/demo", "/demo/", "/dashboard"])
    def test_pages_are_html_with_a_same_origin_policy(self, client: TestClient,
                                                      path: str) -> None:
        r = client.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "camera=(self)" in r.headers["permissions-policy"]

    def test_root_leads_to_the_shopper_page(self, client: TestClient) -> None:
        r = client.get("/", follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"] == "/demo/"

    def test_config_carries_the_demo_key_and_api_paths(self, client: TestClient) -> None:
        body = client.get("/demo/config.json").json()
        assert body["api_key"] == "the-demo-key"
        assert body["paths"]["stream"] == "/v1/tryon/stream"
        assert body["paths"]["offers"] == "/v1/shoppers/{id}/offers"
        assert body["kiosk_idle_s"] > 0 and body["events"]["flush_at"] > 0


class TestStatic:
    @pytest.mark.parametrize("page", ["index.html", "dashboard.html"])
    def test_every_asset_a_page_names_is_served_from_here(self, client: TestClient,
                                                          page: str) -> None:
        html = (CLIENT_DEMO / page).read_text()
        refs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert refs
        for ref in refs:
            if ref.startswith("data:"):
                continue
            assert ref.startswith("/demo/static/"), f"{page} loads {ref} from elsewhere"
            r = client.get(ref)
            assert r.status_code == 200, ref

    def test_modules_import_only_local_files(self, client: TestClient) -> None:
        for js in CLIENT_DEMO.rglob("*.js"):
            for spec in re.findall(r"""^import .* from '([^']+)';""", js.read_text(), re.M):
                assert spec.startswith("./"), f"{js.name} imports {spec}"
                rel = (js.parent / spec).resolve().relative_to(CLIENT_DEMO)
                r = client.get(f"/demo/static/{rel.as_posix()}")
                assert r.status_code == 200
                assert "javascript" in r.headers["content-type"]

    def test_no_path_traversal(self, client: TestClient) -> None:
        assert client.get("/demo/static/../service/settings.py").status_code == 404
        assert client.get("/demo/static/%2e%2e/service/settings.py").status_code == 404
