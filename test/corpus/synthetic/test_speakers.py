"""Synthetic speakers from espeak-ng voice variants."""
import json

import numpy as np
import pytest

from avse.corpus.synthetic.espeak import available_variants, synthesize
from avse.corpus.synthetic.speakers import (PITCH_BANDS, Speaker, make_speakers, max_speakers,
                                  speaker_from_dict, speaker_to_dict)
from avse.errors import InputError


def _band(pitch):
    return next(i for i, (lo, hi) in enumerate(PITCH_BANDS) if lo <= pitch <= hi)


def test_forty_distinct_speakers_with_sorted_ids():
    spk = make_speakers(40, seed=0)
    ids = [s.id for s in spk]
    assert ids[0] == "spk01" and ids[9] == "spk10" and ids[-1] == "spk40"
    assert ids == sorted(ids) and len(set(ids)) == 40
    assert len({(s.voice, _band(s.pitch)) for s in spk}) == 40
    variants = set(available_variants())
    for s in spk:
        accent, variant = s.voice.split("+")
        assert variant in variants and accent in ("en-us", "en")
        assert 0 <= s.pitch <= 100 and 0 <= s.pitch_range <= 100 and 80 <= s.rate <= 450
        assert s.gender in ("m", "f")
    # the first 16 use 16 different variants, alternately male and female
    assert len({s.voice.split("+")[1] for s in spk[:16]}) == 16
    assert [s.gender for s in spk[:6]] == ["m", "f", "m", "f", "m", "f"]
    assert len({s.appearance_seed for s in spk}) == 40


def test_deterministic_and_prefix():
    assert make_speakers(12, seed=5) == make_speakers(12, seed=5)
    assert make_speakers(12, seed=5) != make_speakers(12, seed=6)
    assert make_speakers(5, seed=5) == make_speakers(12, seed=5)[:5]
    assert [s.id for s in make_speakers(3, prefix="bab")] == ["bab01", "bab02", "bab03"]
    assert make_speakers(0) == []


def test_capacity_limit():
    spk = make_speakers(max_speakers(), seed=1)
    assert len({(s.voice, _band(s.pitch)) for s in spk}) == max_speakers() >= 40
    with pytest.raises(InputError, match="only"):
        make_speakers(max_speakers() + 1)
    with pytest.raises(InputError):
        make_speakers(-1)
    with pytest.raises(InputError):
        make_speakers(3, prefix="a_b")


def test_dict_round_trip():
    spk = make_speakers(3, seed=2)
    text = json.dumps([speaker_to_dict(s) for s in spk])
    back = [speaker_from_dict(d) for d in json.loads(text)]
    assert back == spk and isinstance(back[0], Speaker)
    d = speaker_to_dict(spk[0])
    del d["rate"]
    with pytest.raises(InputError, match="rate"):
        speaker_from_dict(d)
    d = dict(speaker_to_dict(spk[0]), gender="x")
    with pytest.raises(InputError, match="gender"):
        speaker_from_dict(d)
    d = dict(speaker_to_dict(spk[0]), pitch="50")
    with pytest.raises(InputError, match="pitch"):
        speaker_from_dict(d)


def _spectral_centroid(x, fs):
    mag = np.abs(np.fft.rfft(x))
    return float(np.sum(mag * np.fft.rfftfreq(x.size, 1 / fs)) / np.sum(mag))


def test_speakers_sound_different():
    text = "Mabel moved the purple bowl beside the window."
    spk = make_speakers(4, seed=0)
    out = [synthesize(text, s.voice, s.rate, s.pitch, s.pitch_range) for s in spk]
    for i in range(len(out)):
        for j in range(i + 1, len(out)):
            a, b = out[i].audio, out[j].audio
            assert a.size != b.size or not np.allclose(a, b)
            ca, cb = _spectral_centroid(a, 16000), _spectral_centroid(b, 16000)
            assert abs(ca - cb) > 20 or abs(a.size - b.size) > 800, (spk[i], spk[j])
