"""Lip (mouth-region) extraction: backends that turn a video into 88x88 crops.

Backends (``lip_backend`` in YAML, options in ``lip_conf``): ``none`` (the video is
already a mouth crop), ``haar`` (face detection, :mod:`avse.lips.haar`), ``landmarks``
(face detection + 68 facial landmarks, :mod:`avse.lips.landmarks`; needs the ``face``
extra, else it falls back to ``haar``) and ``box`` (a given box, tracked;
:mod:`avse.lips.track`).
"""
from avse.lips.backends import LIP_BACKENDS, LIP_FPS, LIP_SIZE, resample_frames  # noqa: F401
from avse.lips import haar, landmarks, track  # noqa: F401,E402  (register the backends)
