"""TCD-TIMIT / NTCD-TIMIT / DEMAND layout parsing on small fake trees."""
import os

import pytest

from avse.corpus.real import tcd_timit as tcd
from avse.errors import InputError
from fake_corpora import make_demand, make_ntcd_timit, make_tcd_timit, write_wav, speech_like


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tcd")
    keys = make_tcd_timit(str(root / "tcd"))
    make_ntcd_timit(str(root / "ntcd"))
    return root, keys


def test_speaker_split_matches_reference():
    assert [tcd.speaker_split(s) for s in ("09F", "56M", "06M", "59F", "01M", "55F")] == \
        ["test", "test", "valid", "valid", "train", "train"]
    assert len(tcd.TEST_SPEAKERS) == 9 and len(tcd.VALID_SPEAKERS) == 8
    assert not set(tcd.TEST_SPEAKERS) & set(tcd.VALID_SPEAKERS)


def test_scan_clips_finds_video_and_optional_wav(tree):
    root, keys = tree
    clips = tcd.scan_clips(str(root / "tcd"))
    assert [c.key for c in clips] == sorted(keys)  # lipspeakers ignored, keys sorted
    by = {c.key: c for c in clips}
    assert by["01M_sa1"].audio is None  # no wav: the mp4's audio track is used
    assert by["01M_sx12"].audio.endswith("volunteers/01M/audio/sx12.wav")
    assert by["09F_sx12"].split == "test" and by["06M_sa1"].split == "valid"
    assert all(c.video.endswith(".mp4") and "straightcam" in c.video for c in clips)


def test_scan_clips_errors_name_the_variable_and_layout(tmp_path):
    with pytest.raises(InputError, match=r"TCD_TIMIT=.*volunteers/<01M..59F>/Clips/straightcam"):
        tcd.scan_clips(str(tmp_path))
    os.makedirs(tmp_path / "volunteers" / "01M" / "Clips" / "straightcam")
    with pytest.raises(InputError, match="no straightcam clips"):
        tcd.scan_clips(str(tmp_path))


def test_lips_dir_replaces_video_and_a_missing_one_is_named(tree, tmp_path):
    root, keys = tree
    with pytest.raises(InputError, match=r"01M_sa1: no mouth video"):
        tcd.scan_clips(str(root / "tcd"), lips_dir=str(tmp_path))


def test_scan_ntcd_every_noise_and_snr_of_test_utterances(tree):
    root, keys = tree
    test = {k: "/clean/" + k for k, s in keys.items() if s == "test"}
    noisy = tcd.scan_ntcd(str(root / "ntcd"), test)
    assert len(noisy) == len(test) * 2 * 2  # Babble, Car x -5, 5; Clean excluded
    v = noisy["09F_sx12_babble_snr-05"]
    assert v["snr"] == -5 and v["noise"] == "babble" and v["clean"] == "09F_sx12"
    assert v["wav"].endswith("Babble/-5/volunteers/09F/straightcam/sx12.wav")
    only = tcd.scan_ntcd(str(root / "ntcd"), test, noises=["car"], snrs=[5])
    assert set(only) == {f"{k}_car_snr+05" for k in test}
    with pytest.raises(InputError, match="NTCD_TIMIT="):
        tcd.scan_ntcd(str(root / "tcd"), test)


def test_find_demand_accepts_both_layouts(tmp_path):
    make_demand(str(tmp_path / "a"), seconds=0.1)
    found = tcd.find_demand(str(tmp_path / "a"))
    assert sorted(found) == sorted(tcd.DEMAND_TYPES)
    assert found["TBUS"].endswith("TBUS_48k/TBUS/ch01.wav")
    write_wav(str(tmp_path / "b" / "TMETRO" / "ch01.wav"), speech_like(0.1, 0))
    with pytest.raises(InputError, match="OOFFICE"):
        tcd.find_demand(str(tmp_path / "b"))


def test_pick_per_speaker_is_fixed_by_seed():
    u2s = {f"{s}_u{i:02d}": s for s in ("09F", "24M") for i in range(30)}
    a = tcd.pick_per_speaker(u2s, 10, seed=0)
    assert a == tcd.pick_per_speaker(dict(reversed(list(u2s.items()))), 10, seed=0)
    assert len(a) == 20 and sum(k.startswith("09F") for k in a) == 10
    assert a != tcd.pick_per_speaker(u2s, 10, seed=1)
    assert tcd.pick_per_speaker({"x_1": "x"}, 10, 0) == ["x_1"]
