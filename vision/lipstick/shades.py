"""Lipstick shade catalog: shades (id, name, hex, finish, Monk tones) from assets/shades/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from vision.errors import CatalogError, OptionsError

DEFAULT_SHADES_PATH = Path(__file__).resolve().parents[2] / "assets" / "shades" / "shades.json"
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


class Finish(Enum):
    """How the lips reflect light: matte flattens, gloss adds a specular, shimmer sparkles."""

    MATTE = "matte"
    SATIN = "satin"
    GLOSS = "gloss"
    SHIMMER = "shimmer"

    @classmethod
    def parse(cls, value: str | Finish) -> Finish:
        if isinstance(value, Finish):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            valid = ", ".join(f.value for f in cls)
            raise OptionsError(f"unknown finish {value!r}; valid finishes: {valid}") from None


def check_intensity(intensity: float) -> float:
    """Intensity as a float in 0..1; anything else is an OptionsError saying so."""
    try:
        value = float(intensity)
    except (TypeError, ValueError):
        raise OptionsError(f"intensity must be a number in 0..1, got {intensity!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise OptionsError(f"intensity must be in 0..1, got {intensity!r}")
    return value


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    m = _HEX.match(value.strip())
    if not m:
        raise CatalogError(f"bad hex colour {value!r}; expected #RRGGBB")
    h = m.group(1)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


@dataclass(frozen=True)
class Shade:
    id: str
    name: str
    hex: str
    finish: Finish
    monk: tuple[int, ...] = field(default_factory=tuple)
    # Commerce: the sku carts and orders name (a shade's sku is its id, so an event naming
    # only the shade still counts), and the unit price in `currency` (None: not for sale).
    sku: str = ""
    price: float | None = None
    currency: str = "EUR"

    def __post_init__(self) -> None:
        if not self.sku:
            object.__setattr__(self, "sku", self.id)

    @property
    def rgb(self) -> tuple[int, int, int]:
        return hex_to_rgb(self.hex)

    @property
    def bgr(self) -> tuple[int, int, int]:
        r, g, b = self.rgb
        return b, g, r

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "sku": self.sku, "name": self.name, "hex": self.hex,
            "finish": self.finish.value, "monk": list(self.monk), "currency": self.currency,
        }
        if self.price is not None:
            out["price"] = self.price
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Shade:
        if not isinstance(d, dict):
            raise CatalogError(f"a shade must be an object, got {type(d).__name__}")
        for key in ("id", "name", "hex", "finish"):
            if not isinstance(d.get(key), str) or not d[key]:
                raise CatalogError(f"shade {d.get('id', '?')!r}: missing or empty {key!r}")
        hex_to_rgb(d["hex"])
        try:
            monk = tuple(int(m) for m in d.get("monk", ()))
        except (TypeError, ValueError):
            raise CatalogError(f"shade {d['id']!r}: monk tones must be integers") from None
        if any(not 1 <= m <= 10 for m in monk):
            raise CatalogError(f"shade {d['id']!r}: monk tones must be 1..10, got {list(monk)}")
        try:
            finish = Finish.parse(d["finish"])
        except OptionsError as exc:  # in a catalog file it is the catalog that is invalid
            raise CatalogError(f"shade {d['id']!r}: {exc}") from None
        sku = d.get("sku", d["id"])
        if sku != d["id"]:
            # Events name a lipstick by its shade id; one key keeps carts, orders and try-ons
            # of the same lipstick together (service.touchpoints.schemas).
            raise CatalogError(f"shade {d['id']!r}: sku must equal the shade id, got {sku!r}")
        price = d.get("price")
        if price is not None:
            if isinstance(price, bool) or not isinstance(price, int | float) or not (
                0 <= float(price) < 1e9
            ):
                raise CatalogError(f"shade {d['id']!r}: price must be a non-negative number")
            price = float(price)
        currency = d.get("currency", "EUR")
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
            raise CatalogError(f"shade {d['id']!r}: currency must be 3 capital letters (EUR)")
        return cls(id=d["id"], name=d["name"], hex=d["hex"].upper(), finish=finish, monk=monk,
                   sku=sku, price=price, currency=currency)


@dataclass(frozen=True)
class ShadeCatalog:
    shades: tuple[Shade, ...]

    def __post_init__(self) -> None:
        ids = [s.id for s in self.shades]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise CatalogError(f"duplicate shade ids: {dupes}")

    def __len__(self) -> int:
        return len(self.shades)

    def __iter__(self) -> Iterator[Shade]:
        return iter(self.shades)

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.shades]

    def get(self, shade_id: str) -> Shade:
        for s in self.shades:
            if s.id == shade_id:
                return s
        raise CatalogError(f"unknown shade {shade_id!r}")

    def for_monk(self, monk_index: int) -> list[Shade]:
        """Shades suggested for a Monk tone band (1..10)."""
        return [s for s in self.shades if monk_index in s.monk]

    def to_dict(self) -> dict[str, Any]:
        return {"shades": [s.to_dict() for s in self.shades]}


def load_shades(path: str | Path | None = None) -> ShadeCatalog:
    """Read a shade catalog JSON ({"shades": [...]}); CatalogError says what is wrong."""
    p = Path(path) if path is not None else DEFAULT_SHADES_PATH
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"shade catalog not found: {p}") from None
    except json.JSONDecodeError as e:
        raise CatalogError(f"shade catalog {p} is not valid JSON: {e}") from None
    items = raw.get("shades") if isinstance(raw, dict) else None
    if not isinstance(items, list) or not items:
        raise CatalogError(f"shade catalog {p} has no 'shades' list")
    return ShadeCatalog(tuple(Shade.from_dict(d) for d in items))
