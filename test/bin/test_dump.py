"""avse.bin.dump (stage 3): audio validation/resampling, lips and the A/V length rule."""
import os

import numpy as np
import pytest

from avse.bin.dump import main
from avse.data.datadir import DataDir
from avse.io.scp import read_table


def _video(path, n_frames, size=88):
    from avse.io.video import write_video

    frames = (np.arange(n_frames)[:, None, None] * 3 + np.zeros((1, size, size))).astype(np.uint8)
    write_video(path, frames, fps=25.0)
    return path


@pytest.fixture
def av_dir(tiny_data_dir, tmp_path):
    wavs = read_table(os.path.join(tiny_data_dir, "wav.scp"))
    durs = {k: float(v) for k, v in read_table(os.path.join(tiny_data_dir, "utt2dur")).items()}
    rows = {}
    for i, k in enumerate(sorted(wavs)):
        n = int(np.ceil(durs[k] * 25))
        n += {0: 0, 1: 1, 2: 5, 3: 40}[i]  # exact, one frame, 0.2 s, 1.6 s too long
        rows[k] = _video(str(tmp_path / "vid" / f"{k}.mp4"), n)
    with open(os.path.join(tiny_data_dir, "video.scp"), "w") as f:
        f.writelines(f"{k} {rows[k]}\n" for k in sorted(rows))
    return tiny_data_dir


def test_dump_lips_and_mismatch_rule(av_dir, tmp_path):
    out = str(tmp_path / "dump")
    assert main(["--data_dir", av_dir, "--out_dir", out, "--progress", "false"]) == 0
    assert main(["--data_dir", av_dir, "--out_dir", out, "--merge", "true"]) == 0
    d = DataDir(out)
    assert d.keys == ["spkA_001", "spkA_002", "spkB_001"]  # spkB_002 left out (1.6 s)
    assert "spkB_002" in read_table(os.path.join(out, "skipped"))
    assert list(read_table(os.path.join(out, "av_mismatch"))) == ["spkB_001"]
    for k in d.keys:
        lips = np.load(d.table("lip.scp")[k])
        conf = np.load(d.table("lip_conf.scp")[k])
        n = int(np.ceil(float(d.table("utt2dur")[k]) * 25 - 1e-9))
        assert lips.shape == (n, 88, 88) and lips.dtype == np.uint8 and conf.shape == (n,)
    # audio already at 16 kHz is referenced in place
    assert d.table("wav.scp") == {k: v for k, v in read_table(os.path.join(av_dir, "wav.scp")).items() if k in d.keys}


def test_dump_lips_of_every_talker(tiny_data_dir, tmp_path):
    """video2.scp (the interferer's video of a 2-talker mixture) becomes lip2.scp / lip_conf2.scp
    with the target's backend, fitted to the mixture's length without the A/V length rule."""
    from avse.io.video import write_video

    wavs = read_table(os.path.join(tiny_data_dir, "wav.scp"))
    durs = {k: float(v) for k, v in read_table(os.path.join(tiny_data_dir, "utt2dur")).items()}
    keys = sorted(wavs)
    need = {k: int(np.ceil(durs[k] * 25)) for k in keys}
    own, other = {}, {}
    for i, k in enumerate(keys):
        own[k] = _video(str(tmp_path / "vid" / f"{k}.mp4"), need[k])
        n2 = need[k] + (40 if i % 2 else -6)   # the interferer's video: 1.6 s longer or 6 frames shorter
        frames = np.full((n2, 88, 88), 30 + 50 * i, np.uint8)
        other[k] = str(tmp_path / "vid" / f"{k}_other.mp4")
        write_video(other[k], frames, fps=25.0)
    for name, rows in (("video.scp", own), ("video2.scp", other)):
        with open(os.path.join(tiny_data_dir, name), "w") as f:
            f.writelines(f"{k} {rows[k]}\n" for k in keys)
    out = str(tmp_path / "dump")
    assert main(["--data_dir", tiny_data_dir, "--out_dir", out, "--progress", "false"]) == 0
    assert main(["--data_dir", tiny_data_dir, "--out_dir", out, "--merge", "true"]) == 0
    d = DataDir(out)
    assert d.keys == keys and not os.path.exists(os.path.join(out, "skipped"))
    assert {"lip.scp", "lip_conf.scp", "lip2.scp", "lip_conf2.scp", "video2.scp"} <= set(d.utt_tables())
    assert not os.path.exists(os.path.join(out, "av_mismatch"))
    for i, k in enumerate(keys):
        n = need[k]
        lips, lips2 = np.load(d.table("lip.scp")[k]), np.load(d.table("lip2.scp")[k])
        conf2 = np.load(d.table("lip_conf2.scp")[k])
        assert lips.shape == lips2.shape == (n, 88, 88) and conf2.shape == (n,)
        assert abs(float(lips2.mean()) - (30 + 50 * i)) < 3        # talker 2's own video
        assert abs(float(lips[-1].mean()) - 3 * (n - 1)) < 6        # not the target's
        if i % 2:
            assert np.all(conf2 == 1)
        else:  # 6 frames short: the last frame repeated, confidence 0
            assert np.all(conf2[:n - 6] == 1) and np.all(conf2[n - 6:] == 0)


def test_dump_resamples_and_rejects_bad_audio(tiny_data_dir, tmp_path, make_wav):
    out = str(tmp_path / "dump8k")
    opts = ["--data_dir", tiny_data_dir, "--out_dir", out, "--fs", "8000", "--lip_backend", "null"]
    assert main(opts) == 0
    assert main(opts + ["--merge", "true"]) == 0
    assert not DataDir(out).has("lip.scp")
    import soundfile as sf
    for v in DataDir(out).table("wav.scp").values():
        assert v.startswith(out) and sf.info(v).samplerate == 8000
    # a NaN file fails the stage with the utterance named, and nothing is marked done
    wavs = read_table(os.path.join(tiny_data_dir, "wav.scp"))
    sf.write(wavs["spkB_001"], np.array([0.1, np.nan] * 100, np.float32), 16000, subtype="FLOAT")
    out2 = str(tmp_path / "dump_bad")
    assert main(["--data_dir", tiny_data_dir, "--out_dir", out2]) == 1
    assert not os.path.exists(os.path.join(out2, ".done"))
    assert main(["--data_dir", str(tmp_path / "missing"), "--out_dir", out2]) == 1


def test_stage_refuses_changed_config(tiny_data_dir, tmp_path):
    out = str(tmp_path / "d")
    assert main(["--data_dir", tiny_data_dir, "--out_dir", out, "--fs", "16000"]) == 0
    assert main(["--data_dir", tiny_data_dir, "--out_dir", out, "--fs", "8000"]) == 1
