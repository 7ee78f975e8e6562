import dataclasses

import numpy as np
import pytest

from avse.corpus.synthetic.mouth import MouthAppearance, render_mouth, render_utterance
from avse.corpus.types import PhonemeEvent, n_video_frames
from avse.corpus.synthetic.visemes import N_PARAMS, viseme_trajectory
from avse.errors import InputError

FS = 16000
SPEC = [("b", .12), ("a", .25), ("p", .12), ("i:", .25), ("m", .12), ("u:", .25), ("b", .12),
        ("A:", .25), ("m", .12), ("oU", .25), ("p", .12), ("aI", .25), ("f", .16)]


def sentence(t0=0.4, tail=0.4):
    ev, t = [], t0
    for p, d in SPEC:
        ev.append(PhonemeEvent(t, t + d, p))
        t += d
    return ev, int(round((t + tail) * FS))


def classes(events, n_frames, margin=0.045):
    """Frame indices by phoneme for frames whose centre is well inside a phoneme
    (aI: its first, open, half only); 'rest' for frames > 0.2 s away from speech."""
    out = {}
    first, last = events[0].start, events[-1].end
    for k in range(n_frames):
        c = (k + 0.5) / 25
        if c < first - 0.2 or c > last + 0.2:
            out.setdefault("rest", []).append(k)
            continue
        for e in events:
            end = e.start + 0.5 * (e.end - e.start) if e.phoneme == "aI" else e.end
            if e.start + margin <= c < end - margin:
                out.setdefault(e.phoneme, []).append(k)
    return {p: np.array(v) for p, v in out.items()}


def dark_mask(frames, app):
    """Mouth-cavity pixels: darker than halfway between the cavity and the lip seam,
    inside a band of rows around the mouth."""
    thr = (app.cavity + 0.72 * app.lip) / 2
    y0, y1 = int(app.mouth_y - 20), int(app.mouth_y + 25)
    return frames[:, y0:y1] < thr


def widths(mask):
    cols = mask.any(axis=1)  # (T, W)
    return np.array([np.ptp(np.nonzero(c)[0]) + 1 if c.any() else 0 for c in cols])


APPEARANCES = [MouthAppearance()] + [MouthAppearance.sample(np.random.default_rng(s))
                                     for s in (1, 7)]


@pytest.fixture(scope="module", params=range(len(APPEARANCES)))
def rendered(request):
    app = APPEARANCES[request.param]
    ev, n = sentence()
    frames = render_utterance(ev, n, FS, app, seed=request.param)
    return app, ev, frames


def test_frame_count_dtype_and_size(rendered):
    app, ev, frames = rendered
    _, n = sentence()
    assert frames.shape == (n_video_frames(n, FS), 88, 88) and frames.dtype == np.uint8


@pytest.mark.parametrize("n", [1, 639, 640, 641, 16000, 16001, 44100])
def test_frame_count_rule(n):
    ev = [PhonemeEvent(0.0, 0.1, "a")]
    assert len(render_utterance(ev, n, FS, MouthAppearance(), seed=0)) == n_video_frames(n, FS)
    f = render_utterance(ev, n, 44100, MouthAppearance(), seed=0)
    assert len(f) == n_video_frames(n, 44100)


def test_opening_by_phoneme_class(rendered):
    app, ev, frames = rendered
    cls = classes(ev, len(frames))
    area = dark_mask(frames, app).sum(axis=(1, 2))
    bilabial = np.concatenate([cls[p] for p in ("b", "p", "m")])
    open_v = np.concatenate([cls[p] for p in ("a", "A:", "aI")])
    others = np.concatenate([cls[p] for p in ("i:", "u:", "oU", "f", "rest")])
    assert len(bilabial) >= 4 and len(open_v) >= 6 and len(cls["rest"]) >= 6
    # rest and bilabial frames: lips closed, no cavity
    assert area[cls["rest"]].max() <= 2
    assert area[bilabial].max() <= 2
    assert area[bilabial].max() <= area[np.concatenate([open_v, others])].min() + 2
    # open vowels: the largest opening, by far
    assert area[open_v].min() > 1.5 * area[others].max()
    assert area[open_v].min() > 80


def test_rounded_narrower_than_spread(rendered):
    app, ev, frames = rendered
    cls = classes(ev, len(frames))
    w = widths(dark_mask(frames, app))
    rounded = np.concatenate([cls["u:"], cls["oU"]])
    assert w[cls["i:"]].min() > 0 and w[rounded].min() > 0
    assert w[rounded].max() < 0.7 * w[cls["i:"]].min()


def test_deterministic_for_a_seed_and_distinct_per_appearance():
    ev, n = sentence()
    a, b = APPEARANCES[0], APPEARANCES[1]
    f1 = render_utterance(ev, n, FS, a, seed=5)
    f2 = render_utterance(ev, n, FS, a, seed=5)
    np.testing.assert_array_equal(f1, f2)
    f3 = render_utterance(ev, n, FS, a, seed=6)
    assert not np.array_equal(f1, f3)
    f4 = render_utterance(ev, n, FS, b, seed=5)
    assert np.abs(f1.astype(int) - f4.astype(int)).mean() > 5


def test_appearance_sampling_is_distinct_and_valid():
    apps = [MouthAppearance.sample(np.random.default_rng(s)) for s in range(20)]
    assert len({a.skin for a in apps}) == 20 and len({a.texture_seed for a in apps}) == 20
    again = MouthAppearance.sample(np.random.default_rng(3))
    assert again == MouthAppearance.sample(np.random.default_rng(3))
    for a in apps:
        assert a.lip >= 79.9 and a.cavity <= 32 and a.skin - a.lip > 10
    skins = np.array([a.skin for a in apps])
    assert skins.max() - skins.min() > 50


def test_jitter_is_slow_and_small():
    import cv2

    traj = viseme_trajectory([], 150)  # a still mouth: only pose/light jitter and noise change
    app = APPEARANCES[2]
    still = render_mouth(traj, app, np.random.default_rng(0), jitter=False)
    assert np.ptp(still.astype(int), axis=0).max() == 0
    f = render_mouth(traj, app, np.random.default_rng(0)).astype(np.float32)
    # the crop's translation, measured by phase correlation against the still frame
    win = cv2.createHanningWindow((88, 88), cv2.CV_32F)
    shift = np.array([cv2.phaseCorrelate(still[0].astype(np.float32), x, win)[0] for x in f])
    assert np.abs(shift).max() < 5.0                          # small
    assert shift.std(axis=0).max() > 0.15                      # but there is motion
    step = np.diff(shift, axis=0).std(axis=0)
    assert np.all(step < 0.4 * shift.std(axis=0))              # slowly varying, not white
    level = f.mean(axis=(1, 2))                                # lighting drifts slowly too
    assert np.diff(level).std() < 0.5 * level.std()
    assert np.abs(np.diff(f, axis=0)).mean() < 3.0


def test_jitter_false_ignores_rng():
    traj = viseme_trajectory(sentence()[0], 30)
    a = render_mouth(traj, APPEARANCES[1], np.random.default_rng(0), jitter=False)
    b = render_mouth(traj, APPEARANCES[1], np.random.default_rng(1), jitter=False)
    np.testing.assert_array_equal(a, b)


def test_unknown_phonemes_and_other_sizes():
    ev = [PhonemeEvent(0.1, 0.3, "Qx#"), PhonemeEvent(0.3, 0.5, "'")]
    f = render_utterance(ev, FS, FS, MouthAppearance(), seed=0, size=64)
    assert f.shape == (25, 64, 64)


def test_bad_trajectory_raises():
    with pytest.raises(InputError):
        render_mouth(np.zeros((4, N_PARAMS - 1)), MouthAppearance(), np.random.default_rng(0))
    empty = render_mouth(np.zeros((0, N_PARAMS)), MouthAppearance(), np.random.default_rng(0))
    assert empty.shape == (0, 88, 88)


def test_appearance_is_a_frozen_value():
    a = MouthAppearance()
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.skin = 1.0
    assert MouthAppearance(**a.as_dict()) == a
