"""Types shared by the synthetic corpus (speech synthesiser, mouth renderer) and the stages (the video-frame rule)."""
import math
from dataclasses import dataclass

from avse.lips.backends import LIP_FPS

VIDEO_FPS = LIP_FPS  # the synthetic corpus renders its mouth crops at the lip rate


@dataclass(frozen=True)
class PhonemeEvent:
    """One phoneme of synthesised speech.

    Attributes:
        start: onset in seconds from the start of the returned audio.
        end: offset in seconds (the next event's onset, or the end of speech).
        phoneme: espeak-ng phoneme mnemonic (``b``, ``aI``, ``@``, ``_`` for a pause).
    """

    start: float
    end: float
    phoneme: str


def n_video_frames(n_samples: int, fs: int, fps: float = VIDEO_FPS) -> int:
    """Number of video frames that cover ``n_samples`` audio samples at ``fs`` Hz.

    The rule used everywhere in avse: ``ceil(n_samples * fps / fs)``; frame ``k``
    shows the mouth at time ``(k + 0.5) / fps`` seconds (the frame centre).
    """
    return int(math.ceil(n_samples * fps / fs - 1e-9))
