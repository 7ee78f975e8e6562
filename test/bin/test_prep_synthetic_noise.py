"""python -m avse.bin.prep_synthetic_noise: a noise data dir of procedural noises."""
import numpy as np
import soundfile as sf

from avse.bin import prep_synthetic_noise
from avse.data.datadir import DataDir
from fake_corpora import speech_like, write_wav


def _run(tmp_path, name, *extra):
    out = tmp_path / name
    rc = prep_synthetic_noise.main(["--out_dir", str(out), "--wav_dir", str(tmp_path / f"{name}_wav"),
                                    "--seconds", "0.5", "--per_type", "2", "--progress", "false", *extra])
    return rc, out


def test_noise_dir_is_valid_seeded_and_scaled(tmp_path):
    rc, out = _run(tmp_path, "a", "--noise_types", "[white, traffic]")
    assert rc == 0
    d = DataDir(str(out))
    d.validate()
    assert d.table("utt2noise") == {"traffic_1": "traffic", "traffic_2": "traffic", "white_1": "white",
                                    "white_2": "white"}
    assert {l.split()[0] for l in open(out / "noise_desc")} == {"white", "traffic"}
    x, fs = sf.read(d.table("wav.scp")["white_1"])
    assert fs == 16000 and len(x) == 8000 and abs(np.sqrt(np.mean(x ** 2)) - 0.1) < 0.01
    _, out2 = _run(tmp_path, "b", "--noise_types", "[white, traffic]")
    y, _ = sf.read(DataDir(str(out2)).table("wav.scp")["white_1"])
    assert np.array_equal(x, y)
    z, _ = sf.read(d.table("wav.scp")["white_2"])
    assert not np.array_equal(x, z)
    assert prep_synthetic_noise.main(["--out_dir", str(out), "--wav_dir", "x", "--noise_types", "[white, traffic]",
                                      "--seconds", "0.5", "--per_type", "2", "--progress", "false"]) == 0  # done: no-op


def test_babble_needs_held_apart_speech(tmp_path):
    rc, _ = _run(tmp_path, "c", "--noise_types", "[babble]")
    assert rc == 1
    sp = tmp_path / "speech"
    sp.mkdir()
    for i in range(3):
        write_wav(str(sp / f"u{i}.wav"), speech_like(1.0, i))
    (sp / "wav.scp").write_text("".join(f"u{i} {sp}/u{i}.wav\n" for i in range(3)))
    rc, out = _run(tmp_path, "d", "--noise_types", "[babble]", "--speech_dir", str(sp))
    assert rc == 0 and len(DataDir(str(out)).keys) == 2


def test_babble_pool_spreads_over_the_speech_dir(tmp_path):
    sp = tmp_path / "speech"
    sp.mkdir()
    for i in range(4):   # lengths tell the utterances apart
        write_wav(str(sp / f"u{i}.wav"), speech_like(0.5 + 0.1 * i, i))
    (sp / "wav.scp").write_text("".join(f"spk{i // 2}_u{i} {sp}/u{i}.wav\n" for i in range(4)))
    args = prep_synthetic_noise.get_parser().parse_args(
        ["--out_dir", str(tmp_path / "o"), "--wav_dir", str(tmp_path / "w"), "--noise_types", "[babble]",
         "--speech_dir", str(sp), "--max_speech", "2"])
    pool = prep_synthetic_noise.NoiseMaker(args).pool
    assert [len(x) for x in pool] == [8000, 12800]     # the first and the last talker, not spk0's two
