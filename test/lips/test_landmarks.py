"""The landmarks lip backend: shape geometry, tracking, smoothing and confidence with an
injected detector (known faces of avse.lips.synthface), the fallback to haar without
dlib, and the real dlib detector on a drawn face when it is installed."""
import logging
import sys

import numpy as np
import pytest

from avse.errors import InputError
from avse.lips import LIP_BACKENDS, dlib_face
from avse.lips import landmarks as lm
from avse.lips.synthface import MOUTH_DY, talking_face

H, W, S = 192, 256, 40.0


def template(open_: float = 0.5) -> np.ndarray:
    """A 68-point face layout (iBUG order) in units of the synthface scale ``s``,
    matching :func:`avse.lips.synthface.draw_face` (eyes at +-0.33, mouth at 0.5)."""
    def ring(cx, cy, rx, ry, n):
        a = np.linspace(np.pi, -np.pi, n, endpoint=False)
        return np.stack([cx + rx * np.cos(a), cy - ry * np.sin(a)], 1)

    a = np.linspace(np.pi, 0, 17)
    jaw = np.stack([0.78 * np.cos(a), 0.1 + 0.95 * np.sin(a)], 1)
    brows = np.r_[np.stack([np.linspace(-0.5, -0.15, 5), np.full(5, -0.42)], 1),
                  np.stack([np.linspace(0.15, 0.5, 5), np.full(5, -0.42)], 1)]
    nose = np.r_[np.stack([np.zeros(4), np.linspace(-0.2, 0.15, 4)], 1),
                 np.stack([np.linspace(-0.1, 0.1, 5), np.full(5, 0.22)], 1)]
    eyes = np.r_[ring(-0.33, -0.22, 0.16, 0.08, 6), ring(0.33, -0.22, 0.16, 0.08, 6)]
    lips = np.r_[ring(0, MOUTH_DY, 0.28, 0.08 + 0.1 * open_, 12), ring(0, MOUTH_DY, 0.2, 0.1 * open_, 8)]
    return np.r_[jaw, brows, nose, eyes, lips]


class FakeModel:
    """Detections and landmarks from the known face path: ``miss`` frames have no
    detection; on ``gone`` frames the landmark fit is garbage (face left the box)."""

    def __init__(self, path, scale, miss=(), gone=(), noise=0.0, seed=0):
        self.path, self.scale, self.miss, self.gone = path, scale, set(miss), set(gone)
        self.noise, self.rng, self.k = noise, np.random.default_rng(seed), -1

    def detect(self, img, upsample=0):
        self.k += 1
        if self.k in self.miss:
            return np.zeros((0, 4)), np.zeros(0)
        c, w = self.path[self.k], 2.2 * self.scale
        return np.array([[c[0] - w / 2, c[1] - w / 2, w, w]]), np.array([1.5])

    def fit(self, img, box):
        if self.k in self.gone:
            return self.rng.uniform(0, 1, (68, 2)) * box[2:] + box[:2]
        p = template() * self.scale + self.path[self.k]
        return p + self.rng.normal(0, self.noise, p.shape)


def _clip(n=40, seed=0):
    t = np.arange(n) / 25.0
    path = np.stack([W / 2 + 25 * np.sin(2 * np.pi * 0.4 * t), H / 2 + 8 * np.sin(2 * np.pi * 0.3 * t)], 1)
    frames, mouth = talking_face(n, H, W, path=path, scale=S, seed=seed)
    return frames, mouth, path


def test_registered_and_shape_geometry():
    assert "landmarks" in LIP_BACKENDS
    p = template() * S + [100, 80]
    # inter-ocular distance 0.66 s; the mouth box is centred on the outer lips
    assert lm.inter_ocular(p) == pytest.approx(0.66 * S)
    box = lm.mouth_boxes(p[None], 1.5)[0]
    assert np.allclose(box, [100, 80 + MOUTH_DY * S, 1.5 * 0.66 * S])
    # a rotated, scaled, shifted copy aligns back exactly; a distorted one does not
    a = np.deg2rad(25)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = 1.7 * p @ R.T + [30, -12]
    assert np.allclose(lm.similarity_align(moved[None], p)[0], p, atol=1e-6)
    bent = moved.copy()
    bent[36:48] += [0, 8]  # eyes moved down 8 px
    r = lm.shape_residual(np.stack([moved, bent, np.full_like(p, np.nan)]), p)
    assert r[0] < 1e-6 and r[1] > 0.05 and np.isnan(r[2])
    ref = lm.mean_shape(np.stack([p, moved]))
    assert lm.inter_ocular(ref) == pytest.approx(1.0)


def test_tracks_through_missed_detections_and_drops_lost_faces():
    frames, mouth, path = _clip()
    model = FakeModel(path, S, miss=range(10, 14), gone=[], noise=0.3)
    lips, conf, boxes, track = lm.landmark_lips(frames, 25.0, model)
    assert lips.shape == (40, 88, 88) and lips.dtype == np.uint8
    assert conf.dtype == np.float32 and conf.min() >= 0 and conf.max() <= 1
    tracked = np.arange(10, 14)
    assert np.all(track.status[tracked] == lm.TRACKED)
    assert np.all(track.status[np.delete(np.arange(40), tracked)] == lm.DETECTED)
    # tracked frames count, but less than detected ones
    assert np.all((conf[tracked] > 0.2) & (conf[tracked] <= 0.5))
    assert np.delete(conf, tracked).min() > 0.7
    assert np.abs(boxes[:, :2] - mouth).max() < 1.0

    # a face lost for longer than max_track frames: the rest of the run is missing
    model = FakeModel(path, S, miss=range(10, 30), noise=0.3)
    _, conf, boxes, track = lm.landmark_lips(frames, 25.0, model, max_track=5)
    assert np.all(track.status[10:15] == lm.TRACKED) and np.all(track.status[15:30] == lm.NONE)
    assert np.all(conf[15:30] == 0) and conf[10:15].min() > 0
    # a fit that no longer looks like the face (it left the box) stops the tracking
    model = FakeModel(path, S, miss=range(10, 20), gone=range(13, 20))
    _, conf, _, track = lm.landmark_lips(frames, 25.0, model)
    assert np.all(track.status[10:13] == lm.TRACKED) and np.all(track.status[13:20] == lm.NONE)
    assert np.all(conf[13:20] == 0)


def test_smoothing_removes_landmark_jitter():
    frames, mouth, path = _clip(seed=1)
    model = FakeModel(path, S, noise=2.0, seed=1)
    _, conf, boxes, track = lm.landmark_lips(frames, 25.0, model)
    raw = lm.mouth_boxes(track.points)
    err_raw = np.std(raw[:, :2] - mouth)
    err_smooth = np.std(boxes[:, :2] - mouth)
    assert err_smooth < 0.7 * err_raw
    assert np.ptp(boxes[:, 2]) < 0.5 * np.ptp(raw[:, 2])
    # noisy landmarks lower the shape consistency, hence the confidence
    _, clean, _, _ = lm.landmark_lips(frames, 25.0, FakeModel(path, S, noise=0.2))
    assert conf.mean() < clean.mean()


def test_resamples_and_errors():
    frames, _, path = _clip(30)
    idx = np.floor(np.arange(36) * 25 / 30).astype(int)  # 30 fps copy of the 25 fps path
    lips, conf, _, _ = lm.landmark_lips(frames[idx], 30.0, FakeModel(path, S))
    assert len(lips) == 30 and conf.shape == (30,)
    with pytest.raises(InputError, match="no face found"):
        lm.landmark_lips(frames, 25.0, FakeModel(path, S, miss=range(30)))
    with pytest.raises(InputError, match="greyscale"):
        lm.landmark_lips(frames[..., None], 25.0, FakeModel(path, S))


@pytest.fixture
def no_dlib(monkeypatch):
    """dlib cannot be imported (and nothing is cached)."""
    monkeypatch.setitem(sys.modules, "dlib", None)
    monkeypatch.setattr(dlib_face, "_MODELS", {})
    monkeypatch.setattr(lm, "_warned", set())


def test_falls_back_to_haar_without_dlib(no_dlib, caplog):
    frames, _, _ = _clip(20)
    with caplog.at_level(logging.WARNING):
        lips, conf = LIP_BACKENDS.build("landmarks", frames, 25.0, mouth_size=1.4)
    ref_lips, ref_conf = LIP_BACKENDS.build("haar", frames, 25.0)
    assert np.array_equal(lips, ref_lips) and np.array_equal(conf, ref_conf)
    assert "using the 'haar' backend" in caplog.text and "tools/install.sh face" in caplog.text
    with pytest.raises(InputError, match="dlib is not installed"):
        LIP_BACKENDS.build("landmarks", frames, 25.0, fallback=False)


def test_missing_model_files_are_named(monkeypatch, tmp_path):
    real = dlib_face.importlib.util.find_spec
    monkeypatch.setattr(dlib_face.importlib.util, "find_spec",
                        lambda name, *a: None if name == dlib_face.MODELS_PACKAGE else real(name, *a))
    with pytest.raises(dlib_face.FaceModelsMissing, match="face_recognition_models.*install.sh face"):
        dlib_face.find_predictor()
    missing = str(tmp_path / "nope.dat")
    with pytest.raises(dlib_face.FaceModelsMissing, match="nope.dat"):
        dlib_face.find_predictor(missing)


def test_real_dlib_detector_on_a_drawn_face():
    pytest.importorskip("dlib")
    try:
        model = dlib_face.load_face_models()
    except dlib_face.FaceModelsMissing as e:
        pytest.skip(str(e))
    frames, mouth, _ = _clip(25, seed=2)
    lips, conf, boxes, track = lm.landmark_lips(frames, 25.0, model)
    assert np.all(track.status == lm.DETECTED)
    assert lips.shape == (25, 88, 88) and conf.min() > 0.5
    # the lip landmarks find the drawn mouth to within 2 px (the face box is ~90 px)
    assert np.abs(boxes[:, :2] - mouth).max() < 2.0
    out, c = LIP_BACKENDS.build("landmarks", frames, 25.0)
    assert np.array_equal(out, lips) and np.allclose(c, conf)
