"""Mouth-box geometry: interpolation and flags, smoothing, outliers, crops, resampling."""
import numpy as np
import pytest

from avse.errors import InputError
from avse.lips.backends import resample_frames
from avse.lips.geometry import (box_agreement, crop_boxes, interpolate_missing, mouth_from_face,
                                smooth_track, track_to_lips)


def test_mouth_from_face_proportions():
    m = mouth_from_face(np.array([[100, 50, 80, 80], [np.nan] * 4]), mouth_x=0.5, mouth_y=0.75, mouth_size=0.5)
    assert np.allclose(m[0], [140, 110, 40])
    assert np.isnan(m[1]).all()


def test_interpolation_fills_gaps_linearly_and_holds_ends():
    t = np.arange(10.0)
    track = np.stack([t * 2, t, np.full(10, 30.0)], 1)
    valid = np.ones(10, bool)
    valid[[0, 1, 4, 5, 9]] = False
    track[~valid] = np.nan
    out = interpolate_missing(track, valid)
    assert np.allclose(out[2:9, 0], t[2:9] * 2)  # linear inside
    assert np.allclose(out[:2, 0], 4.0) and np.isclose(out[9, 0], 16.0)  # held at the ends
    with pytest.raises(InputError, match="no frame"):
        interpolate_missing(track, np.zeros(10, bool))


def test_injected_detections_missing_frames_are_flagged_and_crops_follow():
    """Detections injected by hand (no detector): a bright square moves right by
    2 px/frame; frames 5-9 have no detection. Their crops are interpolated and
    flagged with confidence 0; detected frames keep a high confidence."""
    T, H, W = 20, 120, 160
    frames = np.full((T, H, W), 40, np.uint8)
    truth = np.stack([40 + 2.0 * np.arange(T), np.full(T, 60.0)], 1)
    for k, (x, y) in enumerate(truth):
        frames[k, int(y) - 4:int(y) + 4, int(x) - 4:int(x) + 4] = 250
    track = np.concatenate([truth, np.full((T, 1), 32.0)], 1)
    score = np.ones(T)
    score[5:10] = 0
    track[5:10] = np.nan
    lips, conf, boxes = track_to_lips(frames, track, score, size=88, median=3, sigma=0.5)
    assert lips.shape == (T, 88, 88) and lips.dtype == np.uint8 and conf.dtype == np.float32
    assert np.all(conf[5:10] == 0) and np.all(conf[np.r_[0:5, 10:T]] > 0.8)
    assert np.abs(boxes[:, :2] - truth).max() < 1.0  # linear motion: interpolation is exact
    # the square is in the middle of every crop, the interpolated ones included
    centre = lips[:, 40:48, 40:48].mean(axis=(1, 2))
    assert np.all(centre > 200)


def test_smoothing_reduces_jitter_and_drops_outliers():
    rng = np.random.default_rng(0)
    T = 60
    truth = np.stack([100 + 0.5 * np.arange(T), np.full(T, 80.0), np.full(T, 40.0)], 1)
    noisy = truth + np.concatenate([rng.normal(0, 2.0, (T, 2)), np.zeros((T, 1))], 1)
    noisy[30] = [160, 20, 40]  # a false detection far away
    smooth, kept = smooth_track(noisy, np.ones(T, bool), median=5, sigma=1.5, outlier=0.25)
    assert not kept[30] and kept.sum() == T - 1
    err_raw = np.abs(np.delete(noisy - truth, 30, 0)[:, :2]).mean()
    err_smooth = np.abs(smooth - truth)[:, :2].mean()
    assert err_smooth < 0.6 * err_raw
    assert np.abs(smooth[30, :2] - truth[30, :2]).max() < 3.0


def test_box_agreement_and_crop_errors():
    a = np.array([[10, 10, 10], [10, 10, 10], [10, 10, 10]], float)
    b = np.array([[10, 10, 10], [15, 10, 10], [np.nan, 10, 10]])
    assert np.allclose(box_agreement(a, b), [1.0, 50 / 150, 0.0])
    with pytest.raises(InputError, match="equal T"):
        crop_boxes(np.zeros((3, 10, 10), np.uint8), a[:2])
    with pytest.raises(InputError, match="finite"):
        crop_boxes(np.zeros((3, 10, 10), np.uint8), b)


@pytest.mark.parametrize("fps", [29.97, 30.0, 50.0])
def test_resample_to_25_fps_keeps_time(fps):
    T = int(round(3.0 * fps))
    frames = np.arange(T)  # the value is the input index
    out = resample_frames(frames, fps)
    assert len(out) == int(round(T / fps * 25))
    # output frame k shows the input frame whose span [j, j + 1) / fps holds the time
    # (k + 0.5) / 25 (up to float rounding on a span boundary)
    t_out = (np.arange(len(out)) + 0.5) / 25
    eps = 1e-9
    assert np.all(out / fps <= t_out + eps) and np.all(t_out < (out + 1) / fps + eps)
    assert np.all(np.diff(out) >= 1)  # never the same input frame twice when fps > 25
