"""Objective speech metrics, in one registry.

Every metric is a function ``fn(ref, est, fs) -> float`` taking the reference and the
estimate as 1-D arrays of the same sample rate ``fs``:

- ``si_sdr``: scale-invariant SDR in dB, zero-mean (Le Roux et al. 2019);
- ``sdr``: plain SDR in dB = SNR of the estimate, no scaling, no distortion filter
  (*not* BSS-eval's SDR);
- ``pesq_wb``: wide-band PESQ, ITU-T P.862.2 MOS-LQO (1.04 .. 4.64);
- ``pesq_nb``: narrow-band PESQ, P.862 with the P.862.1 mapping, MOS-LQO (1.02 .. 4.55);
- ``pesq_nb_raw``: raw narrow-band P.862 score (-0.5 .. 4.5), from ``pesq_nb`` through
  the inverse of the P.862.1 mapping (what ``pypesq``, Loizou's MATLAB code and many
  papers report as "PESQ"; see :func:`avse.metrics.pesq_metric.nb_mos_lqo_to_raw`);
- ``estoi``: extended STOI (Jensen & Taal 2016, pystoi ``extended=True``);
- ``stoi``: STOI (Taal et al. 2011, pystoi).

Conventions shared by all metrics:

* Lengths: both signals are cut to the shorter one; a difference above
  :data:`LENGTH_TOL_S` seconds is logged as a warning (see :func:`align`).
* A metric that is undefined for the input (a silent reference or estimate, a signal
  too short for PESQ, PESQ finding no utterance) returns ``nan`` instead of raising;
  callers count ``nan`` values as failures (``avse.bin.score`` reports them in
  ``summary.json`` as ``n_failed``).

:func:`compute_metrics` computes several metrics of one pair at once, aligning the
lengths once and running PESQ-NB only once for ``pesq_nb`` and ``pesq_nb_raw``.
"""
import logging
import math
from typing import Dict, Iterable, Sequence

import numpy as np

from avse.errors import InputError
from avse.utils.registry import Registry

log = logging.getLogger(__name__)

METRICS = Registry("metric")

#: length difference (seconds) tolerated silently when reference and estimate differ
LENGTH_TOL_S = 0.02

#: metrics computed by default (stage 6 of the recipes)
DEFAULT_METRICS = ("si_sdr", "pesq_wb", "pesq_nb", "pesq_nb_raw", "estoi")

#: display labels (used in tables) and number of decimals
LABELS: Dict[str, str] = {
    "si_sdr": "SI-SDR (dB)",
    "si_sdri": "SI-SDRi (dB)",
    "sdr": "SDR (dB)",
    "pesq_wb": "PESQ-WB",
    "pesq_nb": "PESQ-NB (MOS-LQO)",
    "pesq_nb_raw": "PESQ-NB raw",
    "estoi": "ESTOI",
    "stoi": "STOI",
}
DECIMALS: Dict[str, int] = {"si_sdr": 2, "si_sdri": 2, "sdr": 2}


def label(name: str) -> str:
    return LABELS.get(name, name)


def as_mono(x: np.ndarray, what: str = "signal") -> np.ndarray:
    """Return ``x`` as a 1-D float64 array; reject other shapes and non-finite samples."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise InputError(f"{what}: expected a 1-D signal, got shape {x.shape}")
    if x.size == 0:
        raise InputError(f"{what}: empty signal")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{what}: NaN or infinite samples")
    return x


def align(ref: np.ndarray, est: np.ndarray, fs: int | None = None, *, name: str = "",
          tol_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``ref`` and ``est`` to the shorter length (1-D float64 copies).

    A difference of more than ``tol_s`` seconds (default :data:`LENGTH_TOL_S`; with
    ``fs`` None, 320 samples) is logged as a warning naming ``name``.
    """
    ref = as_mono(ref, f"{name + ': ' if name else ''}reference")
    est = as_mono(est, f"{name + ': ' if name else ''}estimate")
    if ref.size != est.size:
        tol = LENGTH_TOL_S if tol_s is None else tol_s
        tol_n = 320 if fs is None else int(round(tol * fs))
        if abs(ref.size - est.size) > tol_n:
            log.warning("%slengths differ: reference %d, estimate %d samples; both cut to %d",
                        f"{name}: " if name else "", ref.size, est.size, min(ref.size, est.size))
        n = min(ref.size, est.size)
        ref, est = ref[:n], est[:n]
    return ref, est


def is_silent(x: np.ndarray) -> bool:
    return not np.any(x)


# derived metrics: name -> (base metric, function of the base value)
DERIVED: Dict[str, tuple] = {}


def compute_metrics(ref: np.ndarray, est: np.ndarray, fs: int, names: Sequence[str], *,
                    name: str = "", tol_s: float | None = None) -> Dict[str, float]:
    """Compute the metrics ``names`` of one pair; values are floats (``nan`` if undefined).

    Raises:
        InputError: unknown metric name, bad signal shape, or a metric failing in an
            unexpected way (the message names ``name`` and the metric).
    """
    for m in names:
        METRICS.get(m)
    ref, est = align(ref, est, fs, name=name, tol_s=tol_s)
    out: Dict[str, float] = {}
    cache: Dict[str, float] = {}

    def run(m: str) -> float:
        if m not in cache:
            if m in DERIVED:
                base, fn = DERIVED[m]
                cache[m] = float(fn(run(base)))
            else:
                try:
                    cache[m] = float(METRICS.get(m)(ref, est, fs))
                except InputError as e:
                    raise InputError(f"{name + ': ' if name else ''}{m}: {e}") from e
                except Exception as e:  # noqa: BLE001 - reraised with the utterance named
                    raise InputError(f"{name + ': ' if name else ''}metric {m} failed: "
                                     f"{type(e).__name__}: {e}") from e
        return cache[m]

    for m in names:
        out[m] = run(m)
    return out


# third-party modules behind some metrics (slow first import: scipy.signal via pystoi)
BACKENDS: Dict[str, str] = {"pesq_wb": "pesq", "pesq_nb": "pesq", "pesq_nb_raw": "pesq",
                            "estoi": "pystoi", "stoi": "pystoi"}


def preload(names: Sequence[str]) -> None:
    """Import the packages the metrics ``names`` need (before forking worker processes,
    so that each worker does not import them again)."""
    import importlib

    for m in names:
        if m in BACKENDS:
            importlib.import_module(BACKENDS[m])


def finite_mean(values: Iterable[float]) -> float:
    """Mean of the finite values; ``nan`` when there are none."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(np.mean(v)) if v else float("nan")


# registration happens on import of the metric modules
from avse.metrics import sisdr as _sisdr  # noqa: E402,F401
from avse.metrics import pesq_metric as _pesq  # noqa: E402,F401
from avse.metrics import stoi_metric as _stoi  # noqa: E402,F401
from avse.metrics.pesq_metric import nb_mos_lqo_to_raw, nb_raw_to_mos_lqo  # noqa: E402
from avse.metrics.sisdr import sdr, si_sdr  # noqa: E402

DERIVED["pesq_nb_raw"] = ("pesq_nb", nb_mos_lqo_to_raw)

__all__ = ["METRICS", "DEFAULT_METRICS", "LABELS", "align", "compute_metrics", "finite_mean",
           "label", "si_sdr", "sdr", "nb_mos_lqo_to_raw", "nb_raw_to_mos_lqo"]
