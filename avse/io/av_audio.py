"""The audio track of a video file (mp4, mkv, ...), decoded with PyAV (FFmpeg).

Used where a corpus ships audio only inside its videos (TCD-TIMIT clips without a
separate wav, AVSpeech clips). FFmpeg's resampler converts the first audio stream
to mono float at the requested rate in one pass, so no intermediate file is written.
"""
import os
from typing import Optional

import numpy as np

from avse.errors import InputError


def _label(path: str, utt: Optional[str]) -> str:
    return f"utterance {utt!r} ({path})" if utt else str(path)


def read_audio_track(path: str, fs: int = 16000, utt: Optional[str] = None) -> np.ndarray:
    """Decode the first audio stream of ``path`` to mono float32 at ``fs`` Hz.

    Channels are averaged (FFmpeg's down-mix) and the rate converted by FFmpeg's
    resampler (``swresample``).

    Returns:
        ``(N,)`` float32 samples in [-1, 1].
    Raises:
        InputError: missing or unreadable file, no audio stream, an empty track,
            NaN samples; the message names the file (and the utterance when given).
    """
    import av

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{_label(path, utt)}: video file not found")
    if fs < 1000:
        raise InputError(f"sample rate must be at least 1000 Hz, got {fs}")
    try:
        container = av.open(path, mode="r")
    except (av.FFmpegError, OSError, ValueError) as e:
        raise InputError(f"{_label(path, utt)}: cannot open: {e}") from e
    chunks = []
    try:
        if not container.streams.audio:
            raise InputError(f"{_label(path, utt)}: no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=int(fs))
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):  # flush the resampler's delay line
            chunks.append(out.to_ndarray().reshape(-1))
    except av.FFmpegError as e:
        raise InputError(f"{_label(path, utt)}: cannot decode the audio: {e}") from e
    finally:
        container.close()
    x = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if x.size == 0:
        raise InputError(f"{_label(path, utt)}: empty audio track")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{_label(path, utt)}: NaN or infinite audio samples")
    return x
