"""Offer ranking: blend own try-on affinity, co-try-on similarity, face-width fit and popularity.

Pure functions over small dataclasses (no SQL, no HTTP), so the service and the synthetic
simulator in benchmarks/offers_quality.py rank with exactly the same code.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from service.touchpoints.names import TRY_ON_EVENTS as TRY_ON_EVENT_NAMES
from service.touchpoints.names import EventName
from vision.measure import FRAME_FIT_TOLERANCE_MM, frame_fits, ideal_frame_width_mm

TRY_ON_EVENTS = frozenset(TRY_ON_EVENT_NAMES)
DWELL_EVENT = EventName.TRY_ON_DWELL
CART_EVENT = EventName.PRODUCT_ADDED
ORDER_EVENT = EventName.ORDER_COMPLETED
ACCEPTED_EVENT = EventName.OFFER_ACCEPTED
REJECTED_EVENT = EventName.OFFER_REJECTED

# A frame "fits" when its total width is within this many mm of the face width
# (the same tolerance the fit-gap report uses).
FIT_TOLERANCE_MM = FRAME_FIT_TOLERANCE_MM


@dataclass(frozen=True)
class Item:
    """A product that can be offered (a frame from the glasses catalog, or a shade)."""

    sku: str
    name: str
    style: str | None = None
    colors: tuple[str, ...] = ()
    frame_width_mm: float | None = None
    kind: str = "frame"
    price: float | None = None
    currency: str | None = None


@dataclass(frozen=True)
class HistoryEvent:
    """The few columns of one of the shopper's events that ranking needs."""

    event: str
    sku: str | None
    variant: str | None = None
    dwell_ms: int | None = None
    timestamp: datetime | None = None


@dataclass
class ShopperProfile:
    """What one shopper's history says about them (all their linked ids merged)."""

    tries: Counter[str] = field(default_factory=Counter)
    dwell_ms: Counter[str] = field(default_factory=Counter)
    carted: set[str] = field(default_factory=set)
    ordered: set[str] = field(default_factory=set)
    colors: Counter[str] = field(default_factory=Counter)
    accepted: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)
    face_width_mm: float | None = None

    @property
    def is_new(self) -> bool:
        return not self.tries and not self.carted

    def affinity(self, sku: str) -> float:
        """Own interest in one item: repeats, dwell (one point per 20 s) and cart adds."""
        return (
            self.tries[sku] + self.dwell_ms[sku] / 20_000.0 + (2.0 if sku in self.carted else 0.0)
        )


def build_profile(
    events: Iterable[HistoryEvent], face_width_mm: float | None = None
) -> ShopperProfile:
    p = ShopperProfile(face_width_mm=face_width_mm)
    for e in events:
        if not e.sku:
            continue
        if e.event in TRY_ON_EVENTS:
            p.tries[e.sku] += 1
            if e.variant:
                p.colors[e.variant.lower()] += 1
        elif e.event == DWELL_EVENT and e.dwell_ms:
            p.dwell_ms[e.sku] += int(e.dwell_ms)
        elif e.event == CART_EVENT:
            p.carted.add(e.sku)
        elif e.event == ORDER_EVENT:
            p.ordered.add(e.sku)
        elif e.event == ACCEPTED_EVENT:
            p.accepted.add(e.sku)
            p.rejected.discard(e.sku)
        elif e.event == REJECTED_EVENT:
            p.rejected.add(e.sku)
            p.accepted.discard(e.sku)
    return p


@dataclass
class ItemStats:
    """Cross-shopper aggregates (no shopper ids): popularity and item-to-item co-occurrence."""

    popularity: dict[str, float] = field(default_factory=dict)
    tried_by: dict[str, int] = field(default_factory=dict)
    # (a, b) -> shoppers who tried both a and b (a != b); symmetric.
    co_tried: dict[tuple[str, str], int] = field(default_factory=dict)
    # (a, b) -> shoppers who tried a and ordered b (a != b).
    chose: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def from_pairs(
        cls,
        tried: Iterable[tuple[str, str]],
        ordered: Iterable[tuple[str, str]],
        popularity: Mapping[str, float] | None = None,
    ) -> ItemStats:
        """Build from distinct (shopper, sku) try-on pairs and (shopper, sku) order pairs."""
        tried_sets: dict[str, set[str]] = defaultdict(set)
        for shopper, sku in tried:
            tried_sets[shopper].add(sku)
        ordered_sets: dict[str, set[str]] = defaultdict(set)
        for shopper, sku in ordered:
            ordered_sets[shopper].add(sku)
        stats = cls()
        tb: Counter[str] = Counter()
        co: Counter[tuple[str, str]] = Counter()
        ch: Counter[tuple[str, str]] = Counter()
        for shopper, skus in tried_sets.items():
            tb.update(skus)
            for a in skus:
                for b in skus:
                    if a != b:
                        co[(a, b)] += 1
                for b in ordered_sets.get(shopper, ()):
                    if a != b:
                        ch[(a, b)] += 1
        stats.tried_by, stats.co_tried, stats.chose = dict(tb), dict(co), dict(ch)
        if popularity is None:
            pop: Counter[str] = Counter(tb)
            for skus in ordered_sets.values():
                for s in skus:
                    pop[s] += 3
            popularity = pop
        stats.popularity = dict(popularity)
        return stats

    def cosine(self, a: str, b: str) -> float:
        n = self.co_tried.get((a, b), 0)
        if not n:
            return 0.0
        return n / math.sqrt(self.tried_by.get(a, 1) * self.tried_by.get(b, 1))

    def chose_rate(self, tried: str, chosen: str) -> float:
        """Share of shoppers who tried `tried` and then ordered `chosen`."""
        n = self.chose.get((tried, chosen), 0)
        return n / self.tried_by[tried] if n else 0.0


@dataclass(frozen=True)
class Weights:
    """Blend weights (tuned on the synthetic simulator; see benchmarks/offers_quality.py)."""

    own: float = 1.0
    style: float = 0.8
    color: float = 0.3
    co_try: float = 0.6
    chose: float = 0.8
    fit: float = 0.9
    popularity: float = 0.5
    accepted: float = 0.5
    rejected: float = 1.5


@dataclass
class Ranked:
    sku: str
    score: float
    reasons: list[str]
    components: dict[str, float]


def _fmt_seconds(ms: int) -> str:
    s = round(ms / 1000)
    return f"{s // 60} min {s % 60} s" if s >= 120 else f"{s} s"


def rank(
    profile: ShopperProfile,
    items: Mapping[str, Item],
    stats: ItemStats,
    *,
    limit: int = 5,
    weights: Weights | None = None,
    fit_tolerance_mm: float = FIT_TOLERANCE_MM,
) -> list[Ranked]:
    """Score every item the shopper has not bought yet and return the best `limit`.

    Each component is scaled to 0..1 so the weights compare like with like; each item's
    reasons list the components that contributed, largest first, as plain sentences.
    """
    w = weights or Weights()
    aff = {
        s: profile.affinity(s) for s in set(profile.tries) | set(profile.dwell_ms) | profile.carted
    }
    aff = {s: a for s, a in aff.items() if a > 0}
    max_aff = max(aff.values(), default=0.0) or 1.0
    total_aff = sum(aff.values()) or 1.0
    style_pref: dict[str, float] = defaultdict(float)
    for s, a in aff.items():
        style = items[s].style if s in items else None
        if style:
            style_pref[style] += a / total_aff
    n_colors = sum(profile.colors.values()) or 1
    max_pop = max(stats.popularity.values(), default=0.0)
    # Popularity matters most for new shoppers and fades as their own history grows.
    pop_weight = w.popularity / (1.0 + 0.5 * sum(profile.tries.values()))

    raw: dict[str, dict[str, float]] = {}
    best_source: dict[str, str] = {}
    for sku, item in items.items():
        if sku in profile.ordered:
            continue
        c: dict[str, float] = {}
        c["own"] = aff.get(sku, 0.0) / max_aff
        c["style"] = style_pref.get(item.style, 0.0) if item.style else 0.0
        c["color"] = max(
            (profile.colors[col.lower()] / n_colors for col in item.colors), default=0.0
        )
        co, ch, best = 0.0, 0.0, (0.0, "")
        for src, a in aff.items():
            if src == sku:
                continue
            co += (a / max_aff) * stats.cosine(src, sku)
            r = stats.chose_rate(src, sku)
            ch += (a / max_aff) * r
            if r * a > best[0]:
                best = (r * a, src)
        c["co_try"], c["chose"] = co, ch
        if best[1]:
            best_source[sku] = best[1]
        c["fit"] = 0.0
        if profile.face_width_mm and item.frame_width_mm:
            ideal = ideal_frame_width_mm(profile.face_width_mm)
            d = (item.frame_width_mm - ideal) / fit_tolerance_mm
            c["fit"] = math.exp(-0.5 * d * d)
        c["popularity"] = (
            math.log1p(stats.popularity.get(sku, 0.0)) / math.log1p(max_pop) if max_pop else 0.0
        )
        raw[sku] = c

    # Similarity sums are unbounded: scale each by its maximum over the candidates.
    for key in ("co_try", "chose"):
        top = max((c[key] for c in raw.values()), default=0.0)
        if top > 0:
            for c in raw.values():
                c[key] /= top

    out: list[Ranked] = []
    for sku, c in raw.items():
        score = (
            w.own * c["own"]
            + w.style * c["style"]
            + w.color * c["color"]
            + w.co_try * c["co_try"]
            + w.chose * c["chose"]
            + w.fit * c["fit"]
            + pop_weight * c["popularity"]
        )
        if sku in profile.accepted:
            score += w.accepted
        if sku in profile.rejected:
            score -= w.rejected
        out.append(
            Ranked(
                sku,
                score,
                _reasons(sku, c, profile, items, best_source, fit_tolerance_mm),
                {k: round(v, 4) for k, v in c.items()},
            )
        )
    out.sort(key=lambda r: (-r.score, r.sku))
    return out[:limit]


def _reasons(
    sku: str,
    c: Mapping[str, float],
    p: ShopperProfile,
    items: Mapping[str, Item],
    best_source: Mapping[str, str],
    tol: float,
) -> list[str]:
    item = items[sku]
    noun = "frame" if item.kind == "frame" else "shade"
    scored: list[tuple[float, str]] = []
    if p.dwell_ms[sku]:
        scored.append(
            (c["own"] + 0.01, f"you tried this {noun} for {_fmt_seconds(p.dwell_ms[sku])}")
        )
    elif p.tries[sku]:
        times = "once" if p.tries[sku] == 1 else f"{p.tries[sku]} times"
        scored.append((c["own"], f"you tried this {noun} {times}"))
    if sku in p.carted:
        scored.append((c["own"], "you added this to your cart"))
    fw, face = item.frame_width_mm, p.face_width_mm
    if c["fit"] > 0 and fw and face and frame_fits(fw, face, tol):
        scored.append((c["fit"], f"fits your face width ({fw:.0f} mm frame)"))
    if sku in best_source and c["chose"] > 0.05:
        src = items[best_source[sku]].name if best_source[sku] in items else best_source[sku]
        scored.append((c["chose"], f"others who tried {src} chose {item.name}"))
    elif c["co_try"] > 0.2:
        scored.append((c["co_try"] * 0.8, "often tried together with frames you tried"))
    if c["style"] > 0.25 and item.style:
        scored.append((c["style"], f"matches a style you like ({item.style})"))
    if c["color"] > 0.25:
        scored.append((c["color"] * 0.8, "comes in a colour you tried"))
    if sku in p.accepted:
        scored.append((1.0, "you accepted an offer for it before"))
    if not scored or p.is_new:
        text = "popular with other shoppers" if c["popularity"] > 0 else "new in our collection"
        scored.append((c["popularity"] * 0.5, text))
    scored.sort(key=lambda t: -t[0])
    return [text for _, text in scored]
