"""Omnichannel hand-off: mint, QR code, claim, expiry and reuse, on both databases."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

from PIL import Image
from sqlalchemy import select, update

from service.db.base import utcnow
from service.handoff.models import HandoffToken
from service.handoff.service import hash_token
from service.identity.service import resolve_shopper_ids
from tests.service.harness import Api
from tests.service.touchpoints.support import new_id, server_settings, track

__all__ = ["server_settings"]  # this module's live server runs on db_url


def mint(api: Api, shopper: str) -> dict:
    # A kiosk key mints for a shopper it served (an event of it stored with that key).
    assert api.post_events([track("Try-On Started", shopper)]).status_code == 200
    r = api.client.post("/v1/handoff", json={"anonymous_id": shopper, "kiosk_id": "k-1"},
                        headers=api.headers())
    assert r.status_code == 201, r.text
    return r.json()


def claim(api: Api, token: str, phone: str):  # type: ignore[no-untyped-def]
    """The phone claims as itself: with a session for its id (a kiosk key may choose it)."""
    r = api.client.post("/v1/sessions", json={"anonymous_id": phone}, headers=api.headers())
    assert r.status_code == 201, r.text
    return api.client.post(f"/v1/handoff/{token}/claim", json={"anonymousId": phone},
                           headers={"Authorization": f"Bearer {r.json()['token']}"})


class TestHandoff:
    def test_claim_answers_the_kiosk_shortlist_and_cart(self, api: Api) -> None:
        """The phone sees at once what the kiosk shopper tried (with dwell) and has in the
        cart; a product ordered since is no longer in the cart."""
        kiosk, phone = new_id("k-"), new_id("p-")
        token = mint(api, kiosk)["token"]
        events = [
            track("Frame Applied", kiosk, sku="RB-1", variant="black"),
            track("Try-On Dwell", kiosk, sku="RB-1", variant="black", dwell_ms=4000),
            track("Shade Applied", kiosk, shade="plum-velvet", intensity=0.7),
            track("Try-On Dwell", kiosk, shade="plum-velvet", dwell_ms=2500),
            track("Product Added", kiosk, shade="plum-velvet", price=22, currency="EUR"),
            track("Product Added", kiosk, sku="RB-1", variant="black", price=119,
                  currency="EUR"),
            track("Order Completed", kiosk, order_id="o-1", sku="RB-1"),
        ]
        assert api.post_events(events).json()["inserted"] == len(events)
        r = claim(api, token, phone)
        assert r.status_code == 200, r.text
        body = r.json()
        tried = {(i["product_type"], i["sku"]): i["dwell_ms"] for i in body["shortlist"]}
        assert tried == {("glasses", "RB-1"): 4000, ("lipstick", "plum-velvet"): 2500}
        (item,) = body["cart"]
        assert (item["sku"], item["shade"], item["price"], item["currency"]) == (
            "plum-velvet", "plum-velvet", 22, "EUR")

    def test_mint_stores_only_a_hash_and_ttl_from_settings(self, api: Api) -> None:
        kiosk = new_id("k-")
        body = mint(api, kiosk)
        assert body["token"] in body["url"] and body["qr_url"].endswith("/qr.png")
        with api.sessionmaker() as s:
            row = s.scalars(select(HandoffToken).where(HandoffToken.shopper_id == kiosk)).one()
        assert row.token_hash == hash_token(body["token"]) and body["token"] not in row.token_hash
        ttl = (row.expires_at - row.created_at).total_seconds()
        assert ttl == api.app.state.runtime.settings.handoff_token_ttl_s

    def test_qr_png_encodes_the_url(self, api: Api) -> None:
        body = mint(api, new_id("k-"))
        r = api.client.get(f"/v1/handoff/{body['token']}/qr.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        img = Image.open(io.BytesIO(r.content))
        assert img.size[0] == img.size[1] and img.size[0] > 100
        import numpy as np

        from tests.qr import decode_qr

        assert decode_qr(np.array(img.convert("L"))) == body["url"]

    def test_claim_links_phone_to_kiosk_history(self, api: Api) -> None:
        kiosk, phone = new_id("k-"), new_id("p-")
        token = mint(api, kiosk)["token"]
        r = claim(api, token, phone)
        assert r.status_code == 200, r.text
        assert r.json() == {"shopper_id": kiosk, "claimed_by": phone,
                            "linked_ids": [phone, kiosk], "shortlist": [], "cart": []}
        with api.sessionmaker() as s:
            assert resolve_shopper_ids(s, phone) == [phone, kiosk]
            assert resolve_shopper_ids(s, kiosk) == [kiosk, phone]

    def test_reuse_is_409_and_qr_of_a_spent_token_too(self, api: Api) -> None:
        token = mint(api, new_id("k-"))["token"]
        assert claim(api, token, new_id("p-")).status_code == 200
        again = claim(api, token, new_id("p-"))
        assert again.status_code == 409 and again.json()["error"]["code"] == "handoff_used"
        assert api.client.get(f"/v1/handoff/{token}/qr.png").status_code == 409

    def test_concurrent_claims_only_one_wins(self, api: Api) -> None:
        token = mint(api, new_id("k-"))["token"]
        codes: list[int] = []
        threads = [threading.Thread(target=lambda: codes.append(
            claim(api, token, new_id("p-")).status_code)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(codes) == [200, 409, 409, 409]

    def test_expired_is_410(self, api: Api) -> None:
        kiosk = new_id("k-")
        token = mint(api, kiosk)["token"]
        with api.sessionmaker.begin() as s:
            s.execute(update(HandoffToken).where(HandoffToken.shopper_id == kiosk).values(
                expires_at=utcnow() - timedelta(seconds=1)))
        r = claim(api, token, new_id("p-"))
        assert r.status_code == 410 and r.json()["error"]["code"] == "handoff_expired"
        assert "expired" in r.json()["error"]["message"]

    def test_unknown_and_malformed_tokens(self, api: Api) -> None:
        assert claim(api, "x" * 32, "p").status_code == 404
        assert claim(api, "bad token!", "p").status_code == 422
        assert api.client.post("/v1/handoff", json={"anonymous_id": "k"}).status_code == 401

    def test_chained_links_resolve_transitively(self, api: Api) -> None:
        kiosk, phone, laptop = new_id("k-"), new_id("p-"), new_id("l-")
        assert claim(api, mint(api, kiosk)["token"], phone).status_code == 200
        assert claim(api, mint(api, phone)["token"], laptop).status_code == 200
        with api.sessionmaker() as s:
            assert resolve_shopper_ids(s, laptop) == [laptop, *sorted([kiosk, phone])]
