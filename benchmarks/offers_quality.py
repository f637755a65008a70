"""SYNTHETIC shopper simulator: recall@5 of the next purchase, offer blend vs popularity baseline.

Every shopper, product and event here is made up by a seeded generator (label: SYNTHETIC).
Shoppers have hidden style, colour and face-width preferences; they try frames on over a few
sessions, dwell longer on what they like, add to cart and buy. For each test shopper the
ranker sees only the events before the session in which they buy, and we check whether the
bought frame is in the top 5. Run: `python -m benchmarks.offers_quality [--shoppers N]`.
"""

from __future__ import annotations

import argparse
import math
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from benchmarks.common import write_report
from service.offers.ranking import HistoryEvent, Item, ItemStats, Weights, build_profile, rank
from vision.measure import ideal_frame_width_mm

STYLES = ("round", "aviator", "cat-eye", "rectangle", "wayfarer", "browline")
COLORS = ("black", "tortoise", "gold", "clear", "red", "blue")


@dataclass
class SimShopper:
    id: str
    style_pref: np.ndarray  # hidden: probability over STYLES
    color: str  # hidden favourite colour
    face_width_mm: float  # hidden unless consented
    consented: bool


def make_catalog(rng: np.random.Generator, n: int = 48) -> tuple[dict[str, Item], np.ndarray]:
    """SYNTHETIC catalog: frames across styles, widths 124-152 mm, colours; and latent appeal."""
    items: dict[str, Item] = {}
    for i in range(n):
        style = STYLES[i % len(STYLES)]
        width = float(rng.choice(np.arange(124, 153, 2)))
        colors = tuple(rng.choice(COLORS, size=int(rng.integers(1, 4)), replace=False).tolist())
        sku = f"SYN-{i:03d}"
        items[sku] = Item(sku, f"Synthetic {style} {i}", style, colors, width)
    appeal = rng.lognormal(0.0, 0.6, size=n)
    return items, appeal


def make_shoppers(rng: np.random.Generator, n: int) -> list[SimShopper]:
    out = []
    for i in range(n):
        pref = rng.dirichlet(np.full(len(STYLES), 0.3))
        out.append(
            SimShopper(
                f"syn-shopper-{i}",
                pref,
                str(rng.choice(COLORS)),
                # temple-to-temple width; the frame that suits it is 0.9x (vision.measure)
                float(np.clip(rng.normal(153, 8), 131, 176)),
                bool(rng.random() < 0.6),
            )
        )
    return out


def utilities(s: SimShopper, items: list[Item], appeal: np.ndarray) -> np.ndarray:
    style = np.array([s.style_pref[STYLES.index(it.style or STYLES[0])] for it in items])
    color = np.array([1.0 if s.color in it.colors else 0.0 for it in items])
    width = np.array([it.frame_width_mm or 0.0 for it in items])
    fit = np.exp(-0.5 * ((width - ideal_frame_width_mm(s.face_width_mm)) / 5.0) ** 2)
    return 3.0 * style + 0.8 * color + 1.6 * fit + 0.6 * np.log(appeal)


def simulate(
    rng: np.random.Generator, s: SimShopper, items: list[Item], appeal: np.ndarray
) -> list[list[HistoryEvent]]:
    """A shopper's sessions; each a list of events. Buying ends the shopper's story."""
    u = utilities(s, items, appeal)
    p_pref = np.exp(2.0 * (u - u.max()))
    p_pref /= p_pref.sum()
    p_pop = appeal / appeal.sum()
    sessions: list[list[HistoryEvent]] = []
    for _ in range(int(rng.integers(2, 5))):
        # Some try-ons follow the shopper's taste, some follow what the store puts in front.
        mix = 0.65 * p_pref + 0.35 * p_pop
        k = int(rng.integers(2, 6))
        tried = rng.choice(len(items), size=k, replace=False, p=mix)
        events: list[HistoryEvent] = []
        for j in tried:
            it = items[j]
            variant = (
                s.color
                if s.color in it.colors and rng.random() < 0.7
                else str(rng.choice(it.colors))
            )
            events.append(HistoryEvent("Frame Applied", it.sku, variant))
            dwell = 8000 * math.exp(0.6 * (u[j] - u.mean()) + rng.normal(0, 0.4))
            events.append(HistoryEvent("Try-On Dwell", it.sku, variant, int(dwell)))
        best = max(tried, key=lambda j: u[j] + rng.gumbel(0, 0.5))
        if u[best] > np.quantile(u, 0.8) and rng.random() < 0.5:
            events.append(HistoryEvent("Product Added", items[best].sku))
            if rng.random() < 0.7:
                events.append(HistoryEvent("Order Completed", items[best].sku))
                sessions.append(events)
                break
        sessions.append(events)
    return sessions


def run(n_shoppers: int = 4000, seed: int = 7) -> dict:
    rng = np.random.default_rng(seed)
    items, appeal = make_catalog(rng)
    item_list = list(items.values())
    shoppers = make_shoppers(rng, n_shoppers)
    histories = {s.id: simulate(rng, s, item_list, appeal) for s in shoppers}
    test_ids = {s.id for s in shoppers[: n_shoppers // 4]}

    # Cross-shopper stats: everything from training shoppers, only the past of test shoppers.
    tried: list[tuple[str, str]] = []
    ordered: list[tuple[str, str]] = []
    cases: list[tuple[SimShopper, list[HistoryEvent], str | None]] = []
    for s in shoppers:
        sess = histories[s.id]
        bought_in = next(
            (i for i, ev in enumerate(sess) if any(e.event == "Order Completed" for e in ev)), None
        )
        visible = sess if s.id not in test_ids else sess[: bought_in or 0]
        for ev in visible:
            for e in ev:
                if e.sku is None:  # never in this simulator; ItemStats wants real SKUs
                    continue
                if e.event == "Frame Applied":
                    tried.append((s.id, e.sku))
                elif e.event == "Order Completed":
                    ordered.append((s.id, e.sku))
        if s.id in test_ids and bought_in:
            target = next(e.sku for e in sess[bought_in] if e.event == "Order Completed")
            past = [e for ev in sess[:bought_in] for e in ev]
            cases.append((s, past, target))
    stats = ItemStats.from_pairs(tried, ordered)

    def recall(fn: Callable[[SimShopper, list[HistoryEvent]], set[str]]) -> float:
        return float(np.mean([target in fn(s, past) for s, past, target in cases]))

    def blend(s: SimShopper, past: list[HistoryEvent], weights: Weights | None = None) -> set[str]:
        profile = build_profile(past, s.face_width_mm if s.consented else None)
        return {r.sku for r in rank(profile, items, stats, limit=5, weights=weights)}

    popular = sorted(items, key=lambda k: -stats.popularity.get(k, 0.0))

    def popularity(s: SimShopper, past: list[HistoryEvent]) -> set[str]:
        return set(popular[:5])

    own_only = Weights(style=0, color=0, co_try=0, chose=0, fit=0, popularity=0.01)
    no_fit = Weights(fit=0)
    r: dict[str, float] = {
        "blend": recall(blend),
        "popularity_baseline": recall(popularity),
        "own_affinity_only": recall(lambda s, p: blend(s, p, own_only)),
        "blend_without_fit": recall(lambda s, p: blend(s, p, no_fit)),
    }
    result: dict[str, object] = {
        "label": "SYNTHETIC shopper simulator",
        "seed": seed,
        "shoppers": n_shoppers,
        "test_cases": len(cases),
        "catalog_items": len(items),
        "recall_at_5": r,
        "weights": asdict(Weights()),
        "machine": platform.platform(),
    }
    result["blend_over_baseline"] = (
        r["blend"] / r["popularity_baseline"] if r["popularity_baseline"] else None
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shoppers", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    res = run(args.shoppers, args.seed)
    lines = [
        "# Offer quality (SYNTHETIC shoppers)",
        "",
        f"seed {res['seed']}, {res['shoppers']} shoppers, {res['test_cases']} test purchases, "
        f"{res['catalog_items']} synthetic frames",
        "",
        "| ranker | recall@5 |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.3f} |" for k, v in res["recall_at_5"].items()]
    lines += ["", f"blend / popularity baseline = {res['blend_over_baseline']:.2f}x"]
    table = "\n".join(lines)
    print(table)
    write_report("offers_quality", res, table)


if __name__ == "__main__":
    main()
