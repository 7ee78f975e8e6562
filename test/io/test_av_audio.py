"""The audio track of a video file, decoded by PyAV."""
import numpy as np
import pytest

from avse.errors import InputError
from avse.io.av_audio import read_audio_track
from avse.io.video import write_video


def _frames(n=25, size=32):
    return np.full((n, size, size), 128, np.uint8)


def test_decodes_the_muxed_track_at_any_rate(tmp_path):
    fs = 16000
    t = np.arange(fs) / fs
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = str(tmp_path / "a.mp4")
    write_video(path, _frames(), 25.0, audio=tone, audio_fs=fs)
    x = read_audio_track(path, 16000, utt="u1")
    assert x.dtype == np.float32 and x.ndim == 1
    assert fs <= len(x) <= fs + 2048  # AAC pads to whole 1024-sample frames
    assert abs(np.sqrt(np.mean(x[2000:14000] ** 2)) - 0.3 / np.sqrt(2)) < 0.02
    spec = np.abs(np.fft.rfft(x[:fs]))
    assert abs(np.argmax(spec) - 440) <= 2  # 1 Hz bins: the tone survives
    y = read_audio_track(path, 8000)
    assert abs(len(y) - len(x) / 2) <= 64


def test_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="u2.*video file not found"):
        read_audio_track(str(tmp_path / "none.mp4"), 16000, utt="u2")
    silent = str(tmp_path / "v.mp4")
    write_video(silent, _frames(), 25.0)
    with pytest.raises(InputError, match="no audio stream"):
        read_audio_track(silent, 16000)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(InputError, match="bad.mp4: cannot open"):
        read_audio_track(str(bad), 16000)
