import os

import pytest

from avse.data.datadir import DataDir, spread_keys
from avse.errors import InputError


def test_valid_dir(tiny_data_dir):
    d = DataDir(tiny_data_dir)
    assert d.problems() == []
    assert d.keys == ["spkA_001", "spkA_002", "spkB_001", "spkB_002"]
    d.validate(check_audio=True, fs=16000)


def test_problems_name_files_and_keys(tiny_data_dir):
    d = tiny_data_dir
    with open(os.path.join(d, "utt2spk"), "a") as f:
        f.write("spkC_001 spkC\n")
    lines = open(os.path.join(d, "text")).read().splitlines()
    with open(os.path.join(d, "text"), "w") as f:
        f.write("\n".join(reversed(lines)) + "\n")
    os.unlink(open(os.path.join(d, "wav.scp")).read().split()[1])
    probs = "\n".join(DataDir(d).problems())
    assert "utt2spk: keys differ from wav.scp; extra e.g. ['spkC_001']" in probs
    assert "text: not sorted" in probs
    assert "spk2utt: inconsistent" in probs
    assert "utterance 'spkA_001': file not found" in probs
    with pytest.raises(InputError, match="invalid data directory"):
        DataDir(d).validate()


def test_fix_repairs(tiny_data_dir):
    d = tiny_data_dir
    os.unlink(os.path.join(d, "utt2dur"))
    os.unlink(open(os.path.join(d, "wav.scp")).read().split()[1])  # spkA_001 audio gone
    with open(os.path.join(d, "utt2spk"), "a") as f:
        f.write("spkC_001 spkC\n")
    res = DataDir(d).fix()
    assert res == {"kept": 3, "removed": 2}
    assert DataDir(d).problems() == []
    assert open(os.path.join(d, ".backup", "removed")).read().split() == ["spkA_001", "spkC_001"]
    assert open(os.path.join(d, "spk2utt")).read() == "spkA spkA_002\nspkB spkB_001 spkB_002\n"


def test_subset_and_audio_check(tiny_data_dir, tmp_path, make_wav):
    sub = DataDir(tiny_data_dir).subset(["spkB_002"], str(tmp_path / "sub"))
    assert sub.keys == ["spkB_002"] and sub.problems() == []
    # an 8 kHz file is found by the audio check, naming the utterance
    wav = sub.table("wav.scp")["spkB_002"]
    import numpy as np
    import soundfile as sf
    sf.write(wav, np.ones(800, np.float32) * 0.1, 8000)
    probs = DataDir(str(tmp_path / "sub")).problems(check_audio=True, fs=16000)
    assert any("spkB_002" in p and "8000 Hz" in p for p in probs)


def test_missing_dir_and_wav_scp(tmp_path):
    with pytest.raises(InputError, match="not found"):
        DataDir(str(tmp_path / "nope"))
    assert DataDir(str(tmp_path)).problems() == [f"{tmp_path}: missing wav.scp"]


def test_spread_keys_draws_on_every_talker():
    keys = [f"spk{s}_u{i}" for s in (2, 1, 3) for i in range(4)]     # 12 keys, 3 talkers, unsorted
    got = spread_keys(keys, 3)
    assert got == ["spk1_u0", "spk2_u2", "spk3_u3"]
    assert {k.split("_")[0] for k in got} == {"spk1", "spk2", "spk3"}
    assert spread_keys(keys, 1) == ["spk1_u0"]
    assert spread_keys(keys, 50) == sorted(keys)
    assert len(set(spread_keys(keys, 11))) == 11
    with pytest.raises(ValueError):
        spread_keys(keys, 0)
