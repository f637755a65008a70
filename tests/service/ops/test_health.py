from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings


class TestHealth:
    def test_healthz_and_readyz(self, tmp_path) -> None:
        app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/t.sqlite"))
        with TestClient(app) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            assert client.get("/readyz").status_code == 200
