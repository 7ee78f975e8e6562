"""espeak-ng synthesis through espeakng-loader: audio, timed phonemes, determinism."""
import numpy as np
import pytest

from avse.corpus.synthetic.espeak import (DEFAULT_MARGIN, Synthesis, available_variants,
                                synthesize)
from avse.errors import InputError

BOB = "Bob put the map in a big blue box."
BILABIALS = {"b", "p", "m"}


def f0_median(x: np.ndarray, fs: int) -> float:
    """Median autocorrelation F0 (Hz) over loud, periodic 40 ms frames."""
    n, hop = int(0.04 * fs), int(0.01 * fs)
    lo, hi = int(fs / 400), int(fs / 60)
    out = []
    for i in range(0, len(x) - n, hop):
        w = x[i:i + n] * np.hanning(n)
        if np.sqrt(np.mean(w ** 2)) < 0.02:
            continue
        ac = np.correlate(w, w, "full")[n - 1:]
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.4 * ac[0]:
            out.append(fs / k)
    assert out, "no voiced frames"
    return float(np.median(out))


def seg_db(x, fs, start, end, frac=1.0):
    a = int(round(start * fs))
    b = max(a + 1, int(round((start + frac * (end - start)) * fs)))
    return 20 * np.log10(np.sqrt(np.mean(x[a:b].astype(np.float64) ** 2)) + 1e-9)


@pytest.fixture(scope="module")
def bob():
    return synthesize(BOB, "en-us+m3", rate=175, pitch=50)


def test_audio_is_speech_at_16k(bob):
    assert isinstance(bob, Synthesis)
    x = bob.audio
    assert bob.fs == 16000 and x.dtype == np.float32 and x.ndim == 1
    assert np.all(np.isfinite(x)) and np.max(np.abs(x)) <= 1.0
    assert 1.2 < x.size / 16000 < 3.5
    assert np.sqrt(np.mean(x ** 2)) > 0.02
    # trimmed to the margin: silent margins, speech right after
    m = int(DEFAULT_MARGIN * 16000)
    assert np.sqrt(np.mean(x[: m - 160] ** 2)) < 1e-3
    assert np.sqrt(np.mean(x[-(m - 160):] ** 2)) < 1e-3
    assert np.sqrt(np.mean(x[m: m + 1600] ** 2)) > 0.01


def test_phoneme_events_are_ordered_and_inside_audio(bob):
    ph = bob.phonemes
    assert len(ph) >= 20
    dur = bob.audio.size / bob.fs
    assert ph[0].start >= DEFAULT_MARGIN - 0.02
    assert abs(ph[-1].end - (dur - DEFAULT_MARGIN)) < 0.002
    for a, b in zip(ph, ph[1:]):
        assert a.start < a.end == b.start
    assert ph[-1].start < ph[-1].end <= dur
    for p in ph:
        assert p.phoneme and p.phoneme[0] not in "',%="  # stress marks stripped
        assert " " not in p.phoneme


def test_bilabials_are_found_and_quiet(bob):
    names = [p.phoneme for p in bob.phonemes]
    assert names.count("b") >= 4 and "p" in names and "m" in names
    # Bob-put-the-map-in-a-big-blue-box: the first phonemes are b, a vowel, b, p
    assert names[0] == "b" and names[2] == "b" and names[3] == "p"
    for voice in ("en-us+m3", "en+f2"):
        syn = bob if voice == "en-us+m3" else synthesize(BOB, voice, rate=160, pitch=55)
        ph, x, fs = syn.phonemes, syn.audio, syn.fs
        n_checked = 0
        for i, p in enumerate(ph[:-2]):
            if p.phoneme not in BILABIALS:
                continue
            closure = seg_db(x, fs, p.start, p.end, frac=0.5)
            after = max(seg_db(x, fs, q.start, q.end) for q in ph[i + 1:i + 3])
            assert closure < after - 5, (voice, i, p, closure, after)
            n_checked += 1
        assert n_checked >= 7


def test_deterministic_even_after_other_calls(bob):
    other = synthesize("Five woolly owls flew over the moor.", "en+f2", rate=150, pitch=70)
    again = synthesize(BOB, "en-us+m3", rate=175, pitch=50)
    assert np.array_equal(again.audio, bob.audio)
    assert again.phonemes == bob.phonemes
    # a voice with breath noise (C rand()) and echo
    other2 = synthesize("Five woolly owls flew over the moor.", "en+f2", rate=150, pitch=70)
    assert np.array_equal(other.audio, other2.audio)


def test_speakers_differ():
    male = synthesize(BOB, "en-us+m3", rate=175, pitch=50)
    female = synthesize(BOB, "en+f2", rate=175, pitch=50)
    assert f0_median(female.audio, 16000) > 1.4 * f0_median(male.audio, 16000)
    low = synthesize(BOB, "en-us+m3", rate=175, pitch=30)
    high = synthesize(BOB, "en-us+m3", rate=175, pitch=70)
    assert f0_median(high.audio, 16000) > 1.2 * f0_median(low.audio, 16000)


def test_rate_and_sample_rate():
    slow = synthesize(BOB, "en-us+m3", rate=120, pitch=50)
    fast = synthesize(BOB, "en-us+m3", rate=250, pitch=50)
    assert slow.audio.size > 1.5 * fast.audio.size
    s16 = synthesize(BOB, "en-us+m3", rate=175, pitch=50, pitch_range=70)
    s8 = synthesize(BOB, "en-us+m3", rate=175, pitch=50, pitch_range=70, fs=8000)
    assert s8.fs == 8000 and abs(s8.audio.size / 8000 - s16.audio.size / 16000) < 1e-3
    assert s8.phonemes == s16.phonemes


def test_bundled_variants_listed():
    v = available_variants()
    assert {"m1", "m3", "f2", "f5"} <= set(v)


@pytest.mark.parametrize("text", ["", "   ", "...", None])
def test_empty_text_raises(text):
    with pytest.raises(InputError, match="text"):
        synthesize(text, "en-us+m3", rate=175, pitch=50)


@pytest.mark.parametrize("voice", ["xx-nosuch", "en+nosuch", "en-us+m3+f2", "+m3", ""])
def test_bad_voice_raises(voice):
    with pytest.raises(InputError, match="voice"):
        synthesize(BOB, voice, rate=175, pitch=50)


def test_bad_parameters_raise():
    with pytest.raises(InputError, match="rate"):
        synthesize(BOB, "en-us+m3", rate=10, pitch=50)
    with pytest.raises(InputError, match="pitch"):
        synthesize(BOB, "en-us+m3", rate=175, pitch=101)
    with pytest.raises(InputError, match="pitch_range"):
        synthesize(BOB, "en-us+m3", rate=175, pitch=50, pitch_range=-1)


def test_identical_in_a_fresh_process():
    """Breath-noise voices are seeded: a new process, a second later, gives the same samples.

    (espeak-ng seeds its noise generator from the clock in whole seconds, so the child
    waits for the next second before synthesising.)
    """
    import hashlib
    import subprocess
    import sys
    import time

    from avse.corpus.synthetic.espeak import _raw_synthesis

    args = ("Five woolly owls flew over the moor.", "en+f2", 150, 70, 40)
    here = hashlib.sha1(_raw_synthesis(*args)[0].tobytes()).hexdigest()
    t0 = int(time.time())
    code = ("import hashlib, time\n"
            "from avse.corpus.synthetic.espeak import _raw_synthesis\n"
            f"while int(time.time()) <= {t0}:\n    time.sleep(0.02)\n"
            f"print(hashlib.sha1(_raw_synthesis(*{args!r})[0].tobytes()).hexdigest())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == here
