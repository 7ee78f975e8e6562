"""avse.bin.benchmark_lips on a synthetic talking-face video (haar; landmarks too when
dlib is installed): per-clip and total figures, degradations, JSON output."""
import json

import numpy as np

from avse.bin import benchmark_lips as bl
from avse.io.video import write_video
from avse.lips.synthface import talking_face


def test_benchmark_lips_reports_rates(tmp_path, capsys):
    frames, _ = talking_face(20, 192, 256, scale=40.0)
    write_video(str(tmp_path / "a.mp4"), frames, fps=25.0)
    (tmp_path / "notes.txt").write_text("not a video")
    out = tmp_path / "b.json"
    assert bl.main([str(tmp_path), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert list(res["clips"]) == ["a.mp4"]
    assert res["total"]["haar"]["frames"] == 20 and res["total"]["haar"]["found"] == 1.0
    assert res["total"]["haar"]["fps"] > 0
    text = capsys.readouterr().out
    assert "a.mp4" in text and "total" in text


def test_degrade_shapes():
    frames = np.zeros((3, 40, 60), np.uint8)
    assert bl.degrade(frames, 0.5).shape == (3, 20, 30)
    assert bl.degrade(frames, rotate=15).shape == (3, 40, 60)
