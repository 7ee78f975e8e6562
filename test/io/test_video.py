import os
from fractions import Fraction

import numpy as np
import pytest

from avse.corpus.synthetic.mouth import MouthAppearance, render_utterance
from avse.corpus.types import PhonemeEvent, n_video_frames
from avse.errors import InputError
from avse.io import video
from avse.io.video import read_video, video_info, write_video

FS = 16000


@pytest.fixture(scope="module")
def clip():
    ev, t = [], 0.3
    for p, d in [("b", .08), ("a", .2), ("m", .08), ("i:", .2), ("f", .1), ("u:", .2),
                 ("T", .08), ("aI", .2)]:
        ev.append(PhonemeEvent(t, t + d, p))
        t += d
    n = int((t + 0.3) * FS)
    frames = render_utterance(ev, n, FS, MouthAppearance.sample(np.random.default_rng(4)), seed=1)
    assert len(frames) == n_video_frames(n, FS)
    return frames, n


def mae(a, b):
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_round_trip_of_a_rendered_clip(tmp_path, clip):
    frames, _ = clip
    path = str(tmp_path / "sub" / "clip.mp4")
    write_video(path, frames, fps=25.0)
    got, fps = read_video(path)
    assert got.shape == frames.shape and got.dtype == np.uint8
    assert fps == 25.0
    assert mae(got, frames) < 2.0
    info = video_info(path)
    assert info == (len(frames), 25.0, 88, 88, pytest.approx(len(frames) / 25, abs=1e-6))
    # no temporary files left next to it
    assert os.listdir(tmp_path / "sub") == ["clip.mp4"]


def test_round_trip_rgb_and_lossless(tmp_path, clip):
    frames, _ = clip
    p = str(tmp_path / "lossless.mp4")
    write_video(p, frames, crf=0)
    np.testing.assert_array_equal(read_video(p)[0], frames)
    rgb = np.stack([frames, frames, frames], axis=-1)
    p = str(tmp_path / "rgb.mp4")
    write_video(p, rgb)
    got, _ = read_video(p, gray=False)
    assert got.shape == rgb.shape and mae(got, rgb) < 3.0
    gray, _ = read_video(p, gray=True)
    assert gray.shape == frames.shape and mae(gray, frames) < 3.0


@pytest.mark.parametrize("n", [1, 2, 7, 61])
@pytest.mark.parametrize("fps", [25.0, 29.97, 50.0])
def test_exact_frame_count(tmp_path, n, fps):
    rng = np.random.default_rng(n)
    frames = rng.integers(0, 256, size=(n, 32, 48), dtype=np.uint8)
    p = str(tmp_path / "x.mp4")
    write_video(p, frames, fps=np.float32(fps))
    got, rate = read_video(p)
    assert len(got) == n and got.shape[1:] == (32, 48)
    assert rate == pytest.approx(fps, rel=1e-4)
    info = video_info(p)
    assert info[:4] == (n, pytest.approx(fps, rel=1e-4), 48, 32)


def test_audio_muxed_clip_still_reads_video(tmp_path, clip):
    import av

    frames, n = clip
    audio = (0.3 * np.sin(2 * np.pi * 220 * np.arange(n) / FS)).astype(np.float32)
    p = str(tmp_path / "av.mp4")
    write_video(p, frames, fps=25.0, audio=audio, audio_fs=FS)
    got, fps = read_video(p)
    assert got.shape == frames.shape and fps == 25.0 and mae(got, frames) < 2.0
    assert video_info(p)[0] == len(frames)
    with av.open(p) as c:
        assert len(c.streams.audio) == 1
        a = c.streams.audio[0]
        assert a.sample_rate == FS and a.codec_context.name == "aac" and a.channels == 1
        decoded = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(a)])
    assert abs(len(decoded) - n) < 4096  # AAC adds priming/padding samples


def test_other_containers_and_mpeg4_fallback(tmp_path, clip, monkeypatch):
    frames, _ = clip
    for ext in ("avi", "mkv"):
        p = str(tmp_path / f"c.{ext}")
        write_video(p, frames)
        got, fps = read_video(p)
        assert got.shape == frames.shape and fps == 25.0 and mae(got, frames) < 2.0
    monkeypatch.setattr(video, "_video_codec", lambda: "mpeg4")
    p = str(tmp_path / "m4.mp4")
    write_video(p, frames)
    got, fps = read_video(p)
    assert got.shape == frames.shape and fps == 25.0 and mae(got, frames) < 4.0


def test_odd_sizes(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, size=(5, 31, 45), dtype=np.uint8)
    p = str(tmp_path / "odd.mp4")
    write_video(p, frames)
    got, _ = read_video(p)
    assert got.shape == frames.shape


def test_missing_and_bad_files_raise_input_error(tmp_path, clip):
    missing = str(tmp_path / "nope.mp4")
    for fn in (read_video, video_info):
        with pytest.raises(InputError, match="nope.mp4.*not found"):
            fn(missing)
        with pytest.raises(InputError, match="utt7"):
            fn(missing, utt="utt7")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 500)
    for fn in (read_video, video_info):
        with pytest.raises(InputError, match="garbage.mp4"):
            fn(str(garbage), utt="u1")
    good = str(tmp_path / "good.mp4")
    write_video(good, clip[0])
    data = open(good, "rb").read()
    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="trunc.mp4"):
        read_video(str(trunc))


def test_audio_only_and_zero_frame_files_raise(tmp_path):
    import av

    for ext, fmt in (("m4a", "mp4"), ("avi", "avi")):
        p = str(tmp_path / f"a.{ext}")
        with av.open(p, "w", format=fmt) as c:
            if ext == "avi":  # a video stream that holds no frames
                v = c.add_stream("mpeg4", rate=Fraction(25))
                v.width, v.height, v.pix_fmt = 16, 16, "yuv420p"
            a = c.add_stream("aac", rate=FS)
            a.layout = "mono"
            af = av.AudioFrame.from_ndarray(np.zeros((1, 4000), np.float32), format="fltp",
                                            layout="mono")
            af.sample_rate, af.pts = FS, 0
            c.mux(a.encode(af))
            c.mux(a.encode())
        for fn in (read_video, video_info):
            msg = "no video stream" if ext == "m4a" else "no frames"
            with pytest.raises(InputError, match=msg):
                fn(p, utt="u9")


def test_write_rejects_bad_input_and_leaves_nothing(tmp_path):
    p = tmp_path / "bad.mp4"
    with pytest.raises(InputError):
        write_video(str(p), np.zeros((0, 88, 88), np.uint8))
    with pytest.raises(InputError):
        write_video(str(p), np.zeros((3, 88, 88), np.float32))
    with pytest.raises(InputError):
        write_video(str(p), np.zeros((3, 88), np.uint8))
    with pytest.raises(InputError):
        write_video(str(p), np.zeros((3, 88, 88), np.uint8), fps=0)
    with pytest.raises(InputError):
        write_video(str(p), np.zeros((3, 88, 88), np.uint8), audio=np.zeros(100, np.float32))
    with pytest.raises(InputError):
        write_video(str(p), np.zeros((3, 88, 88), np.uint8), audio=np.zeros((2, 100)), audio_fs=FS)
    with pytest.raises(InputError, match="cannot encode"):  # AAC has no 7 Hz rate
        write_video(str(p), np.zeros((3, 88, 88), np.uint8), audio=np.zeros(100), audio_fs=7)
    assert list(tmp_path.iterdir()) == []
