"""Synthetic lip corruptions: exactly the masked frames change, in the intended way."""
import numpy as np
import pytest

from avse.corpus.synthetic.mouth import MouthAppearance, render_mouth
from avse.corpus.synthetic.visemes import N_PARAMS
from avse.errors import InputError
from avse.lips.corrupt import (CORRUPTIONS, blur, check_degradation, dark, degrade, missing, occlude, off_centre,
                               random_corruption, segments, time_shift)


@pytest.fixture(scope="module")
def lips():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 30)[:, None]
    traj = 0.5 + 0.4 * np.sin(2 * np.pi * (3 * t + rng.uniform(0, 1, N_PARAMS)))
    return render_mouth(traj, MouthAppearance.sample(rng), rng)


def test_segments_cover_the_exact_fraction():
    rng = np.random.default_rng(1)
    for frac in (0.0, 0.25, 0.5, 1.0):
        m = segments(41, rng, frac)
        assert m.sum() == round(frac * 41)


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_only_masked_frames_change(lips, name):
    out, m = CORRUPTIONS[name](lips, np.random.default_rng(2))
    assert out.shape == lips.shape and out.dtype == np.uint8
    assert m.sum() == 15  # default: half of the 30 frames
    assert np.array_equal(out[~m], lips[~m])
    diff = np.abs(out[m].astype(int) - lips[m].astype(int)).mean(axis=(1, 2))
    assert np.all(diff > 2.0), f"{name}: some masked frames hardly changed: {diff.min():.2f}"


def test_corruptions_do_what_they_say(lips):
    rng = np.random.default_rng(3)
    half = np.zeros(30, bool)
    half[::2] = True  # 50 % of frames missing, every other one
    out, m = missing(lips, rng, half, fill="zero")
    assert np.array_equal(m, half) and out[half].max() == 0
    out, _ = missing(lips, rng, half, fill="repeat")
    assert np.array_equal(out[1::2], lips[1::2]) and np.array_equal(out[2::2], lips[1:-1:2])
    with pytest.raises(InputError, match="fill"):
        missing(lips, rng, half, fill="black")
    out, _ = dark(lips, rng, half)
    assert out[half].mean() < 0.3 * lips[half].mean()

    def sharpness(x):
        return np.abs(np.diff(x.astype(float), axis=2)).mean()

    out, _ = blur(lips, rng, half)
    assert sharpness(out[half]) < 0.7 * sharpness(lips[half])
    out, _ = occlude(lips, rng, half)
    centre = (slice(None), slice(34, 54), slice(34, 54))
    assert np.abs(out[half][centre].astype(int) - lips[half][centre].astype(int)).mean() > 10
    out, _ = off_centre(lips, rng, half)
    assert np.abs(out[half].astype(int) - lips[half].astype(int)).mean() > 5


def test_time_shift(lips):
    out, m = time_shift(lips, 3)
    assert np.array_equal(out[3:], lips[:-3]) and np.array_equal(out[:3], np.repeat(lips[:1], 3, 0))
    assert m.all()
    out, m = time_shift(lips, -2)
    assert np.array_equal(out[:-2], lips[2:]) and m.all()
    assert not time_shift(lips, 0)[1].any()


def test_random_corruption_labels(lips):
    rng = np.random.default_rng(4)
    seen_clean = seen_bad = False
    for _ in range(20):
        out, y = random_corruption(lips, rng, p_clean=0.3)
        assert y.shape == (30,) and set(np.unique(y)) <= {0.0, 1.0}
        assert np.array_equal(out[y == 1], lips[y == 1])
        seen_clean |= bool(y.all())
        seen_bad |= bool((y == 0).any())
    assert seen_clean and seen_bad
    with pytest.raises(InputError, match="uint8"):
        random_corruption(lips.astype(float), rng)


def test_named_degradations():
    rng = np.random.default_rng(0)
    T = 50
    lips = np.random.default_rng(1).integers(1, 256, (T, 88, 88)).astype(np.uint8)
    mask, rel = np.ones(T, bool), np.ones(T, np.float32)
    l1, m1, r1 = degrade("missing50", lips, mask, rel, rng)
    assert m1.sum() == T // 2 and np.all(r1[~m1] == 0) and np.all(r1[m1] == 1)
    assert not l1[~m1].any() and np.array_equal(l1[m1], lips[m1])
    assert np.any(~m1[:-1] & ~m1[1:])  # missing in runs, not single frames only
    l2, m2, r2 = degrade("shift3", lips, mask, rel, rng)
    assert np.array_equal(l2[3:], lips[:-3]) and np.all(l2[:3] == lips[0]) and m2.all()
    l3, m3, r3 = degrade("occlude", lips, mask, rel, rng)
    assert m3.all() and np.all(r3 == 1)
    centre = (l3 != lips)[:, 38:52, 30:58].mean(axis=(1, 2))  # the mouth centre is covered
    assert np.all(centre > 0.9) and np.array_equal(l3[:, :5], lips[:, :5])
    l0, m0, r0 = degrade("none", lips, mask, rel, rng)
    assert np.array_equal(l0, lips) and m0.all()
    assert np.all(mask) and np.all(rel == 1)  # inputs untouched
    for bad in ("missing150", "blur", "shift", "shuffle2", "Shuffle"):
        with pytest.raises(InputError, match="unknown lip degradation"):
            check_degradation(bad)
    # shuffle (another utterance's lips) is a valid name, applied by LipConditioner only
    assert check_degradation("shuffle") == "shuffle"
    with pytest.raises(InputError, match="LipConditioner"):
        degrade("shuffle", lips, mask, rel, rng)
