"""avse.bin.extract_lips (lips-only stage) and the lip path of avse.bin.dump on
synthetic talking-face videos: backends from the config, utt2face, 29.97/30 fps,
resumability, the merge report and clear errors."""
import json
import os

import numpy as np
import pytest

import avse.bin.extract_lips as ex
from avse.bin.dump import main as dump_main
from avse.data.datadir import DataDir
from avse.io.scp import read_table
from avse.io.video import write_video
from avse.lips.synthface import talking_face

H, W = 192, 256


def _face_video(path, seconds, fps, seed, cx=W / 2):
    n = int(round(seconds * fps))
    t = np.arange(n) / fps
    face = np.stack([cx + 10 * np.sin(2 * np.pi * 0.5 * t), H / 2 + 4 * np.sin(2 * np.pi * 0.3 * t)], 1)
    frames, _ = talking_face(n, H, W, path=face, scale=40.0, seed=seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_video(path, frames, fps=fps)
    return path


@pytest.fixture
def video_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    vids = {"a_25": (25.0, 0.8), "b_2997": (29.97, 0.9), "c_30": (30.0, 0.8)}
    rows = {k: _face_video(str(tmp_path / "vid" / f"{k}.mp4"), s, fps, i) for i, (k, (fps, s)) in enumerate(vids.items())}
    (d / "video.scp").write_text("".join(f"{k} {rows[k]}\n" for k in sorted(rows)))
    (d / "utt2face").write_text("b_2997 0.5 0.5\n")  # the others have none
    return str(d), vids


def test_extract_lips_resumes_and_merges(video_dir, tmp_path, monkeypatch):
    data, vids = video_dir
    out = str(tmp_path / "lips")
    calls = []
    real = ex.extract_lips

    def counting(video, *a, **k):
        calls.append(os.path.basename(video))
        return real(video, *a, **k)

    monkeypatch.setattr(ex, "extract_lips", counting)
    # a broken video stops the job with the utterance named, after the others are done
    scp = os.path.join(data, "video.scp")
    good = open(scp).read()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with open(scp, "a") as f:
        f.write(f"d_bad {broken}\n")
    opts = ["--data_dir", data, "--out_dir", out, "--lip_backend", "haar", "--progress", "false"]
    assert ex.main(opts) == 1
    assert len(calls) == 4
    # fixed input: the re-run extracts only what is missing
    with open(scp, "w") as f:
        f.write(good)
    assert ex.main(opts) == 0
    assert len(calls) == 4  # nothing redone: a, b, c were recorded before the failure
    assert ex.main(opts + ["--merge", "true", "--montage", "3"]) == 0
    lips, conf = read_table(os.path.join(out, "lip.scp")), read_table(os.path.join(out, "lip_conf.scp"))
    assert list(lips) == ["a_25", "b_2997", "c_30"]
    for k, (fps, sec) in vids.items():
        x, c = np.load(lips[k]), np.load(conf[k])
        n = int(round(round(sec * fps) / fps * 25))
        assert x.shape == (n, 88, 88) and x.dtype == np.uint8 and c.shape == (n,) and c.dtype == np.float32
        assert c.min() > 0.5
    assert all(float(v) == 1.0 for v in read_table(os.path.join(out, "utt2lip_det")).values())
    with open(os.path.join(out, ".done")) as f:
        done = json.load(f)
    assert done["detection_rate"] == 1.0 and done["ms_per_frame"] > 0
    assert os.path.isfile(os.path.join(out, "montage.png")) and os.path.isfile(os.path.join(out, "config.yaml"))
    # a finished dir is not redone; an unknown backend fails early
    assert ex.main(opts) == 0 and len(calls) == 4
    assert ex.main(["--data_dir", data, "--out_dir", str(tmp_path / "l2"), "--lip_backend", "nope"]) == 1


def test_bad_face_table_and_no_face_are_named(video_dir, tmp_path):
    data, _ = video_dir
    with open(os.path.join(data, "utt2face"), "w") as f:
        f.write("b_2997 1.5 0.5\n")
    assert ex.main(["--data_dir", data, "--out_dir", str(tmp_path / "o1"), "--progress", "false"]) == 1
    blank = tmp_path / "blank.mp4"
    write_video(str(blank), np.full((10, H, W), 90, np.uint8), fps=25.0)
    d2 = tmp_path / "d2"
    d2.mkdir()
    (d2 / "video.scp").write_text(f"x {blank}\n")
    out = str(tmp_path / "o2")
    assert ex.main(["--data_dir", str(d2), "--out_dir", out, "--on_error", "skip", "--progress", "false"]) == 0
    skipped = read_table(os.path.join(out, ".jobs", "skipped.1"))
    assert "no face" in skipped["x"]


def test_dump_passes_utt2face_to_the_backend(tiny_data_dir, tmp_path):
    """Stage 3 with the box backend: it needs the face centre, which only utt2face gives."""
    durs = read_table(os.path.join(tiny_data_dir, "utt2dur"))
    rows = {k: _face_video(str(tmp_path / "v" / f"{k}.mp4"), float(d), 30.0, i)
            for i, (k, d) in enumerate(sorted(durs.items()))}
    with open(os.path.join(tiny_data_dir, "video.scp"), "w") as f:
        f.writelines(f"{k} {rows[k]}\n" for k in sorted(rows))
    opts = ["--data_dir", tiny_data_dir, "--lip_backend", "box", "--lip_conf", "{face_size: 0.46}",
            "--progress", "false"]
    assert dump_main(opts + ["--out_dir", str(tmp_path / "d1")]) == 1  # no utt2face: error
    with open(os.path.join(tiny_data_dir, "utt2face"), "w") as f:
        f.writelines(f"{k} 0.5 0.5\n" for k in sorted(rows))
    out = str(tmp_path / "d2")
    assert dump_main(opts + ["--out_dir", out]) == 0
    assert dump_main(opts + ["--out_dir", out, "--merge", "true"]) == 0
    d = DataDir(out)
    assert d.keys == sorted(rows) and d.has("utt2face")
    for k in d.keys:
        n = int(np.ceil(float(d.table("utt2dur")[k]) * 25 - 1e-9))
        assert np.load(d.table("lip.scp")[k]).shape == (n, 88, 88)
        assert np.load(d.table("lip_conf.scp")[k]).shape == (n,)
