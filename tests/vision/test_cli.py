"""`python -m vision annotate` on real images and video, and the subcommand dispatcher."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import vision.__main__ as cli_main
from vision.cli.annotate import IRIS_COLOR

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict], str]:
    code = cli_main.main(argv)
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


class TestAnnotateImage:
    def test_photo(self, shared_data: Path, tmp_path: Path,
                   capsys: pytest.CaptureFixture[str]) -> None:
        src = shared_data / "faces" / "photos" / "biden.jpg"
        out = tmp_path / "biden.png"
        code, records, err = _run(["annotate", str(src), "--out", str(out)], capsys)
        assert code == 0 and "wrote" in err
        (rec,) = records
        assert rec["frame"] == 0 and set(rec["timings_ms"]) >= {"landmarks", "pose", "measure"}
        (face,) = rec["faces"]
        assert abs(face["pose"]["yaw_deg"]) < 30
        assert 50 < face["measurements"]["pd_mm"] < 80
        assert face["measurements"]["size_band"] in ("S", "M", "L")
        original = cv2.imread(str(src))
        drawn = cv2.imread(str(out))
        assert drawn.shape == original.shape
        # The drawing is where the face is: iris circles around the pupils, nothing far away.
        x0, y0, x1, y1 = (int(v) for v in face["bbox"])
        changed = np.any(drawn != original, axis=2)
        assert changed[y0:y1, x0:x1].mean() > 0.05
        assert not changed[-50:, :].any()
        iris = np.all(np.abs(drawn.astype(int) - IRIS_COLOR) < 60, axis=2)
        assert iris[y0:y1, x0:x1].sum() > 20

    def test_no_face(self, shared_data: Path, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
        img = cv2.imread(str(shared_data / "faces" / "photos" / "obama.jpg"))[600:]
        src = tmp_path / "suit.png"
        cv2.imwrite(str(src), img)
        code, records, _ = _run(["annotate", str(src), "--out", str(tmp_path / "o.png")], capsys)
        assert code == 0 and records[0]["faces"] == []
        assert np.array_equal(cv2.imread(str(tmp_path / "o.png")), img)

    def test_two_faces(self, shared_data: Path, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
        src = shared_data / "faces" / "photos" / "two_people.jpg"
        code, records, _ = _run(["annotate", str(src), "--out", str(tmp_path / "t.jpg"),
                                 "--max-faces", "2"], capsys)
        assert code == 0 and len(records[0]["faces"]) == 2

    def test_corrupt_input_is_a_clean_error(self, shared_data: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
        data = (shared_data / "faces" / "photos" / "obama.jpg").read_bytes()
        src = tmp_path / "broken.jpg"
        src.write_bytes(data[: len(data) // 3])
        code, records, err = _run(["annotate", str(src), "--out", str(tmp_path / "x.jpg")],
                                  capsys)
        assert code == 2 and records == [] and "error:" in err
        assert not (tmp_path / "x.jpg").exists()


class TestAnnotateVideo:
    def test_video(self, shared_data: Path, tmp_path: Path,
                   capsys: pytest.CaptureFixture[str]) -> None:
        src = shared_data / "videos" / "headtrackr_capture4.mp4"
        out = tmp_path / "ann.mp4"
        code, records, _ = _run(["annotate", str(src), "--out", str(out), "--max-frames", "25"],
                                capsys)
        assert code == 0
        assert [r["frame"] for r in records] == list(range(25))
        assert all(len(r["faces"]) == 1 for r in records)
        assert records[1]["t_s"] > records[0]["t_s"]
        yaws = [r["faces"][0]["pose"]["yaw_deg"] for r in records]
        assert max(yaws) - min(yaws) < 40
        cap = cv2.VideoCapture(str(out))
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, first = cap.read()
        cap.release()
        assert ok and frames == 25 and first.shape == (240, 320, 3)

    def test_missing_video(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        code, _, err = _run(["annotate", str(tmp_path / "nope.mp4"), "--out",
                             str(tmp_path / "o.mp4")], capsys)
        assert code == 2 and "cannot open" in err


class TestDispatcher:
    def test_missing_subcommand_modules_are_skipped(self, monkeypatch: pytest.MonkeyPatch
                                                    ) -> None:
        monkeypatch.setattr(cli_main, "SUBCOMMANDS",
                            {"annotate": "annotate", "later": "not_written_yet"})
        parser, runners = cli_main.build_parser()
        assert set(runners) == {"annotate"}
        args = parser.parse_args(["annotate", "in.jpg", "--out", "o.jpg", "--fov", "50"])
        assert args.fov == 50.0 and args.max_frames is None

    def test_only_the_chosen_subcommand_is_loaded(self) -> None:
        _, runners = cli_main.build_parser("annotate")
        assert set(runners) == {"annotate"}
        _, everything = cli_main.build_parser(None)
        assert "annotate" in everything

    def test_requires_a_command(self) -> None:
        with pytest.raises(SystemExit):
            cli_main.main([])

    def test_entry_point(self, shared_data: Path, tmp_path: Path) -> None:
        src = shared_data / "faces" / "aflw2000" / "image00050.jpg"
        proc = subprocess.run(
            [sys.executable, "-m", "vision", "annotate", str(src), "--out",
             str(tmp_path / "a.jpg")], cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        rec = json.loads(proc.stdout.strip().splitlines()[-1])
        assert len(rec["faces"]) == 1
