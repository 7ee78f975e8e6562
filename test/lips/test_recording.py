"""avse.lips.recording: finding a recording's video and its lips, window by window."""
import numpy as np
import pytest

from avse.errors import InputError
from avse.lips.recording import find_video, recording_lips


def test_find_video_by_relative_path_then_stem(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/x.mp4", "a/x.npy", "y.avi", "z.txt"):
        (tmp_path / name).write_bytes(b"")
    assert find_video(str(tmp_path), "a/x") == str(tmp_path / "a" / "x.npy")   # .npy first
    assert find_video(str(tmp_path), "deep/y") == str(tmp_path / "y.avi")
    assert find_video(str(tmp_path), "z") is None


def test_lips_from_npy_padded_cut_or_missing(tmp_path):
    p = str(tmp_path / "v.npy")
    np.save(p, np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((1, 88, 88), np.uint8))
    lips = recording_lips(p, 12, max_mismatch=0.5)
    crops, mask, rel = lips.window(8, 12)
    assert crops[:, 0, 0].tolist() == [8, 9, 9, 9] and mask.all() and rel.tolist() == [1, 1, 0, 0]
    assert recording_lips(p, 7).window(0, 9)[0][:, 0, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 6, 6]
    with pytest.raises(InputError, match=r"v.npy: 10 video frames .* differ by more than 0.1 s"):
        recording_lips(p, 20, max_mismatch=0.1, label="a.wav")
    crops, mask, rel = recording_lips(None, 5).window(1, 4)
    assert crops.shape == (3, 88, 88) and not mask.any() and not rel.any()
    np.save(p, np.zeros((10, 64, 64), np.uint8))
    with pytest.raises(InputError, match="v.npy: mouth crops are 64x64"):
        recording_lips(p, 10)
    (tmp_path / "bad.mp4").write_bytes(b"no video")
    with pytest.raises(InputError, match="bad.mp4"):
        recording_lips(str(tmp_path / "bad.mp4"), 10)


def test_lips_from_a_video_through_a_backend(tmp_path):
    from avse.io.video import write_video

    p = str(tmp_path / "v.mp4")
    frames = np.repeat(np.arange(0, 240, 16, dtype=np.uint8), 2)[:, None, None] * np.ones((1, 88, 88), np.uint8)
    write_video(p, frames, fps=50.0)   # 0.6 s at 50 fps -> 15 frames at 25 fps
    lips = recording_lips(p, 16, backend="none")   # 0.04 s short: padded
    crops, mask, rel = lips.window(0, 16)
    assert crops.shape == (16, 88, 88) and mask.all() and rel[:15].min() == 1 and rel[15] == 0
    assert abs(int(crops[14, 40, 40]) - 224) <= 2   # the frames' grey levels, in order
