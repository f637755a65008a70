"""The products offers can rank: frames from the served catalog plus lipstick shades."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from service.offers.ranking import Item

CATALOG_TTL_S = 60.0


def items_from_products(products: Iterable[Mapping[str, Any]]) -> dict[str, Item]:
    """GlassesProduct.to_dict()-shaped dicts (sku, name, style, variants, frame_width_mm)."""
    out = {}
    for p in products:
        colors = tuple(
            str(v.get("name", "")).lower() for v in p.get("variants") or () if v.get("name")
        )
        width = p.get("frame_width_mm")
        out[p["sku"]] = Item(
            p["sku"],
            p.get("name") or p["sku"],
            p.get("style"),
            colors,
            float(width) if width else None,
            "frame",
            float(p["price"]) if p.get("price") is not None else None,
            p.get("currency"),
        )
    return out


def items_from_shades(shades: Iterable[Any]) -> dict[str, Item]:
    """Lipstick shades (vision.lipstick Shade objects or dicts: id, name, finish) as items.

    Their events carry the shade id in the `shade` column, which offers use as the sku.
    """
    out = {}
    for s in shades:
        get = s.get if isinstance(s, Mapping) else lambda k, s=s: getattr(s, k, None)
        sid = get("id")
        finish = get("finish")
        finish = getattr(finish, "value", finish)  # vision's Finish enum -> "satin"
        if sid:
            out[sid] = Item(sid, get("name") or sid, finish, (), None, "shade")
    return out


class OfferCatalog:
    """Items from the served catalog (glasses and shades), refreshed every minute."""

    def __init__(
        self,
        list_products: Callable[[], list[dict[str, Any]]],
        list_shades: Callable[[], Iterable[Any]],
    ) -> None:
        self._list_products = list_products
        self._list_shades = list_shades
        self._lock = threading.Lock()
        self._items: dict[str, Item] = {}
        self._at = -1e9

    def items(self) -> dict[str, Item]:
        with self._lock:
            if time.monotonic() - self._at > CATALOG_TTL_S:
                items = items_from_products(self._list_products())
                items.update(items_from_shades(self._list_shades()))
                self._items, self._at = items, time.monotonic()
            return self._items
