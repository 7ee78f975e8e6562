"""Lip (mouth-region) extraction: backends that turn a video into 88x88 crops."""
from avse.lips.backends import LIP_BACKENDS, LIP_FPS, LIP_SIZE, resample_frames  # noqa: F401
