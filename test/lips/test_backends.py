"""The haar and box lip backends end to end on synthetic talking-face video.

The Haar cascade really runs here (it fires on the drawn face of
avse.lips.synthface; nothing is mocked); the true mouth centre of every frame is
known, so box accuracy is measured against it.
"""
import numpy as np
import pytest

from avse.errors import InputError
from avse.lips import LIP_BACKENDS
from avse.lips.haar import face_track
from avse.lips.geometry import mouth_from_face
from avse.lips.synthface import talking_face

H, W, S = 192, 256, 40.0  # small frames keep the tests fast; the face box is ~90 px


def _path(n, fps, seed=0):
    """Face centres moving in a slow curve (pixels), sampled at ``fps``."""
    t = np.arange(n) / fps
    return np.stack([W / 2 + 25 * np.sin(2 * np.pi * 0.4 * t + seed), H / 2 + 8 * np.sin(2 * np.pi * 0.3 * t)], 1)


@pytest.fixture(scope="module")
def face25():
    frames, mouth = talking_face(40, H, W, path=_path(40, 25.0), scale=S, seed=1)
    return frames, mouth


def _crop_centre_error(frames, lips, mouth, side):
    """Where the mouth (darkest blob) is in each crop vs the crop centre, in pixels of
    the frame: (T, 2)."""
    import cv2

    out = []
    for crop in lips:
        g = cv2.GaussianBlur(crop, (0, 0), 3)
        y, x = np.unravel_index(np.argmin(g), g.shape)
        out.append([(x + 0.5 - 44) * side / 88, (y + 0.5 - 44) * side / 88])
    return np.array(out)


def test_haar_detects_and_tracks_the_mouth(face25):
    frames, mouth = face25
    faces = face_track(frames)
    assert np.isfinite(faces).all()  # the cascade fires on every frame
    det = mouth_from_face(faces)
    err = det[:, :2] - mouth
    side = float(np.median(det[:, 2]))
    # geometry: the mouth lies within 15 % of the crop side from its centre, and the
    # detections follow the 50-px sway of the face to within 2 px (bias removed)
    assert np.abs(err.mean(0)).max() < 0.15 * side
    assert np.abs(err - err.mean(0)).max() < 2.5
    lips, conf = LIP_BACKENDS.build("haar", frames, 25.0)
    assert lips.shape == (40, 88, 88) and lips.dtype == np.uint8
    assert conf.dtype == np.float32 and conf.min() > 0.5
    # the dark open mouth is near the centre of the crops
    pos = _crop_centre_error(frames, lips, mouth, side)
    assert np.abs(np.median(pos, 0)).max() < 0.15 * side


def test_haar_missing_frames_interpolated_and_flagged(face25):
    frames, mouth = face25
    frames = frames.copy()
    gone = np.r_[10:16, 30]
    frames[gone] = frames[gone].mean().astype(np.uint8)  # face gone: flat grey frames
    lips, conf = LIP_BACKENDS.build("haar", frames, 25.0)
    assert len(lips) == 40
    assert np.all(conf[gone] == 0) and np.all(np.delete(conf, gone) > 0.5)
    # the frames next to the gap still have the mouth in the middle of the crop
    side = float(np.nanmedian(mouth_from_face(face_track(frames))[:, 2]))
    near = np.r_[8, 9, 16, 17, 29, 31]
    pos = _crop_centre_error(frames[near], lips[near], mouth[near], side)
    assert np.abs(np.median(pos, 0)).max() < 0.15 * side
    with pytest.raises(InputError, match="no face"):
        LIP_BACKENDS.build("haar", np.full((5, H, W), 90, np.uint8), 25.0)


@pytest.mark.parametrize("fps", [29.97, 30.0])
def test_haar_resamples_to_25_fps(fps):
    n = int(round(1.6 * fps))
    frames, mouth = talking_face(n, H, W, path=_path(n, fps), scale=S, seed=2)
    lips, conf = LIP_BACKENDS.build("haar", frames, fps)
    assert len(lips) == int(round(n / fps * 25)) and conf.shape == (len(lips),)
    assert conf.min() > 0.5


def test_haar_face_xy_chooses_the_speaker():
    """Two faces; utt2face's centre picks the right one (default: the larger)."""
    import cv2

    from avse.lips.synthface import draw_face

    frames = []
    rng = np.random.default_rng(0)
    for k in range(8):
        c = np.full((H, W), 90, np.float32)
        draw_face(c, 70, 96, 42, 0.5)
        draw_face(c, 190, 96, 36, 0.5)
        frames.append(np.clip(cv2.GaussianBlur(c, (0, 0), 1.5) + rng.normal(0, 2, c.shape), 0, 255))
    frames = np.array(frames, np.uint8)
    left = face_track(frames)
    right = face_track(frames, face_xy=(190 / W, 96 / H))
    assert np.all(np.abs(left[:, 0] + left[:, 2] / 2 - 70) < 8)
    assert np.all(np.abs(right[:, 0] + right[:, 2] / 2 - 190) < 8)
    # a face centre where there is no face: no face is taken
    with pytest.raises(InputError, match="no face"):
        LIP_BACKENDS.build("haar", frames, 25.0, face_xy=(0.0, 1.0))
    with pytest.raises(InputError, match="bad configuration"):  # a typo in lip_conf
        LIP_BACKENDS.build("haar", frames, 25.0, mouth_z=0.8)


def test_box_backend_tracks_from_the_face_centre():
    fps = 30.0
    n = 45
    t = np.arange(n) / fps
    opening = 0.5 - 0.5 * np.cos(2 * np.pi * 2.5 * t)
    frames, mouth = talking_face(n, H, W, path=_path(n, fps, seed=1), scale=S, mouth_open=opening, seed=3)
    face0 = (mouth[0] - [0, 0.5 * S]) / [W, H]
    # the drawn face is ~2.2 s high and its mouth 0.5 s below the centre
    opts = dict(face_xy=tuple(face0), face_size=2.2 * S / H, mouth_y=0.5 + 0.5 / 2.2)
    lips, conf = LIP_BACKENDS.build("box", frames, fps, **opts)
    n25 = int(round(n / fps * 25))
    assert len(lips) == n25 and conf.min() > 0.5
    # measured where the mouth is open (its dark inside is then the darkest spot)
    src = np.minimum(np.floor((np.arange(n25) + 0.5) / 25 * fps).astype(int), n - 1)
    open_ = opening[src] > 0.5
    assert open_.sum() >= 10
    side = 0.5 * 2.2 * S
    # tracked: the mouth stays centred although the face moves by ~50 px
    pos = _crop_centre_error(frames, lips, mouth, side)[open_]
    assert np.abs(pos).max() < 6
    # a fixed, untracked box on the same video loses the mouth
    fixed, c1 = LIP_BACKENDS.build("box", frames, fps, track=False, **opts)
    assert np.all(c1 == 1)
    assert np.abs(_crop_centre_error(frames, fixed, mouth, side)[open_]).max() > 15
    with pytest.raises(InputError, match="needs a box"):
        LIP_BACKENDS.build("box", frames, fps)
    # a fixed start box in lip_conf ([cx, cy, side] as fractions of the frame)
    lips2, _ = LIP_BACKENDS.build("box", frames, fps, box=[mouth[0, 0] / W, mouth[0, 1] / H, side / H])
    assert np.abs(_crop_centre_error(frames, lips2, mouth, side)[open_]).max() < 6
