"""Video reading and writing with PyAV (FFmpeg).

Frames are ``uint8``: ``(T, H, W)`` greyscale or ``(T, H, W, 3)`` RGB. Every failure
to read raises :class:`avse.errors.InputError` naming the file (and the utterance
when given).

Writing uses H.264 (``libx264``) when the PyAV build has it, else MPEG-4 part 2.
Greyscale frames of even size are stored exactly in the luma plane of full-range
``yuv420p`` (neutral chroma), so the only loss is that of the encoder: at the default
``crf=12`` the mean absolute error of an 88x88 mouth clip is below one grey level.
Frame ``k`` gets the time stamp ``k / fps`` (time base ``1 / fps``, ``pts = k``) and
the encoder is flushed, so the number of frames read back equals the number written.
"""
import os
from fractions import Fraction
from typing import Optional, Tuple

import numpy as np

from avse.errors import InputError
from avse.utils.fileio import atomic_path

DEFAULT_CRF = 12
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}
_COLOR_RANGE_JPEG = 2  # AVCOL_RANGE_JPEG: full-range luma 0-255


def _label(path: str, utt: Optional[str]) -> str:
    return f"utterance {utt!r} ({path})" if utt else str(path)


def _open_for_reading(path: str, utt: Optional[str]):
    import av

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{_label(path, utt)}: video file not found")
    try:
        container = av.open(path, mode="r")
    except av.FFmpegError as e:
        raise InputError(f"{_label(path, utt)}: undecodable video: {e}") from e
    if not container.streams.video:
        container.close()
        raise InputError(f"{_label(path, utt)}: no video stream")
    return container


def _frame_rate(stream, n_frames: int, duration: Optional[float]) -> Optional[float]:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return float(rate)
    if duration and duration > 0 and n_frames > 0:
        return n_frames / duration
    return None


def _stream_duration(container, stream) -> Optional[float]:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / 1e6  # AV_TIME_BASE
    return None


def read_video(path: str, gray: bool = True, utt: Optional[str] = None) -> Tuple[np.ndarray, float]:
    """Decode all frames of the first video stream.

    Returns ``(frames, fps)``: ``(T, H, W)`` uint8 when ``gray`` else ``(T, H, W, 3)``
    uint8 RGB, and the stream's average frame rate (for variable-frame-rate files the
    frames are returned as decoded, with ``float(stream.average_rate)``).
    """
    import av

    label = _label(os.fspath(path), utt)
    container = _open_for_reading(path, utt)
    fmt = "gray" if gray else "rgb24"
    frames = []
    try:
        with container:
            stream = container.streams.video[0]
            try:
                for frame in container.decode(stream):
                    frames.append(frame.to_ndarray(format=fmt))
            except av.EOFError:  # some demuxers report an empty stream this way
                pass
            fps = _frame_rate(stream, len(frames), _stream_duration(container, stream))
    except av.FFmpegError as e:
        raise InputError(f"{label}: undecodable video: {e}") from e
    if not frames:
        raise InputError(f"{label}: video has no frames")
    if fps is None:
        raise InputError(f"{label}: cannot determine the frame rate")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise InputError(f"{label}: frame size changes within the video ({sorted(shapes)})")
    return np.stack(frames).astype(np.uint8, copy=False), fps


def video_info(path: str, utt: Optional[str] = None) -> Tuple[int, float, int, int, float]:
    """``(n_frames, fps, width, height, duration_s)`` without decoding the pictures.

    The frame count comes from the container index, or from counting the packets of
    the video stream when the container does not store it.
    """
    import av

    label = _label(os.fspath(path), utt)
    container = _open_for_reading(path, utt)
    try:
        with container:
            stream = container.streams.video[0]
            n = int(stream.frames or 0)
            if n <= 0:
                try:
                    for packet in container.demux(stream):
                        n += packet.size > 0
                except av.EOFError:
                    pass
            width, height = int(stream.codec_context.width), int(stream.codec_context.height)
            duration = _stream_duration(container, stream)
            fps = _frame_rate(stream, n, duration)
    except av.FFmpegError as e:
        raise InputError(f"{label}: undecodable video: {e}") from e
    if n <= 0:
        raise InputError(f"{label}: video has no frames")
    if fps is None:
        raise InputError(f"{label}: cannot determine the frame rate")
    if duration is None:
        duration = n / fps
    return n, fps, width, height, float(duration)


def _rational_rate(fps: float) -> Fraction:
    """The simplest fraction within 1e-6 of ``fps`` (25 -> 25, 29.97 -> 2997/100,
    30000/1001 stays as is, even from a float32)."""
    for d in (1, 1001, 100_000):
        r = Fraction(fps).limit_denominator(d)
        if abs(float(r) - fps) <= 1e-6 * fps:
            return r
    return Fraction(fps).limit_denominator(1_000_000)


def _video_codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_video(path: str, frames: np.ndarray, fps: float = 25.0,
                audio: Optional[np.ndarray] = None, audio_fs: Optional[int] = None,
                crf: int = DEFAULT_CRF) -> None:
    """Write ``frames`` (``(T, H, W)`` grey or ``(T, H, W, 3)`` RGB uint8) as a video
    file (mp4 unless the extension says mov/mkv/avi), atomically.

    Args:
        fps: frame rate; frame ``k`` is shown at ``k / fps``.
        audio: optional mono float samples in [-1, 1], muxed as an AAC track.
        audio_fs: sample rate of ``audio`` (required with it).
        crf: H.264 constant rate factor (0 lossless; the default 12 is near-lossless).
    """
    import av

    path = os.fspath(path)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise InputError(f"{path}: video frames must be uint8, got {frames.dtype}")
    if not (frames.ndim == 3 or (frames.ndim == 4 and frames.shape[-1] == 3)):
        raise InputError(f"{path}: frames must have shape (T, H, W) or (T, H, W, 3), "
                         f"got {frames.shape}")
    T, H, W = frames.shape[:3]
    if T == 0 or H == 0 or W == 0:
        raise InputError(f"{path}: refusing to write an empty video {frames.shape}")
    if not (fps and np.isfinite(fps) and fps > 0):
        raise InputError(f"{path}: invalid frame rate {fps}")
    if audio is not None:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 2 and 1 in audio.shape:
            audio = audio.reshape(-1)
        if audio.ndim != 1:
            raise InputError(f"{path}: audio to mux must be mono (N,), got shape {audio.shape}")
        if not audio_fs or int(audio_fs) <= 0:
            raise InputError(f"{path}: audio_fs is required with audio")
    rate = _rational_rate(float(fps))
    codec = _video_codec()
    even = H % 2 == 0 and W % 2 == 0
    if codec == "mpeg4" and not even:
        raise InputError(f"{path}: MPEG-4 needs even frame sizes, got {W}x{H}")
    ext = os.path.splitext(path)[1].lower()
    with atomic_path(path) as tmp:
        try:
            _encode(tmp, _FORMATS.get(ext, "mp4"), frames, rate, codec, crf, audio, audio_fs)
        except av.FFmpegError as e:
            raise InputError(f"{path}: cannot encode the video ({codec}): {e}") from e


def _encode(tmp: str, fmt: str, frames: np.ndarray, rate: Fraction, codec: str, crf: int,
            audio: Optional[np.ndarray], audio_fs: Optional[int]) -> None:
    import av

    gray = frames.ndim == 3
    T, H, W = frames.shape[:3]
    even = H % 2 == 0 and W % 2 == 0
    direct = gray and even and codec == "libx264"  # luma stored as is, full range
    tb = 1 / rate  # kept: the stream's own time base may change when the muxer starts
    with av.open(tmp, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = W, H
        stream.pix_fmt = "yuv420p" if even else "yuv444p"
        stream.time_base = tb
        if codec == "libx264":
            stream.options = {"crf": str(int(crf)), "preset": "faster", "threads": "1"}
        else:
            stream.bit_rate = max(2_000_000, int(W * H * float(rate) * 2))
            stream.options = {"qmax": "4"}
        if direct:
            stream.codec_context.color_range = _COLOR_RANGE_JPEG
            chroma = np.full((H // 2, W), 128, np.uint8)
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=int(audio_fs))
            astream.layout = "mono"
            astream.bit_rate = 96_000
            astream.time_base = Fraction(1, int(audio_fs))
        for k in range(T):
            if direct:
                vf = av.VideoFrame.from_ndarray(np.concatenate([frames[k], chroma]), format="yuv420p")
                vf.color_range = _COLOR_RANGE_JPEG
            else:
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[k]),
                                                format="gray" if gray else "rgb24")
            vf.pts = k
            vf.time_base = tb
            container.mux(stream.encode(vf))
        container.mux(stream.encode())  # flush the delayed (B-)frames
        if astream is not None and audio.size:
            af = av.AudioFrame.from_ndarray(np.clip(audio, -1.0, 1.0)[None, :], format="fltp",
                                            layout="mono")
            af.sample_rate = int(audio_fs)
            af.pts = 0
            af.time_base = Fraction(1, int(audio_fs))
            container.mux(astream.encode(af))
            container.mux(astream.encode())
