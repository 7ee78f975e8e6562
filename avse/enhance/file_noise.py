"""The noise PSD of a whole recording, estimated in constant memory from its chunks.

The ``stationary`` noise model (and ``nmf`` with ``init: quantile``) estimates a
per-frequency PSD as a low quantile over time of the smoothed noisy power
(:func:`avse.enhance.noise_models.quantile_psd`). Enhancing a long file chunk by chunk
(:mod:`avse.enhance.chunked`), each chunk would see only its own few seconds; instead
:class:`FilePSD` collects the power of every chunk once and gives the PSD of the whole
file, which every chunk then uses (``noise_psd=``, :mod:`avse.enhance.base`).

The quantile over time is taken from a histogram per frequency of ``log10`` power
(:data:`BINS_PER_DECADE` bins a decade from :data:`LOG_RANGE`; values beyond it count
in the edge bins), interpolated linearly within a bin: within 0.1 dB of the exact
quantile, in ``F * 4500`` counters (4.6 MB for 256 bins) whatever the file length. Each
chunk adds only its *core* frames (:meth:`FilePSD.add`), so that every STFT frame of the
file is counted once; the smoothing over ``smooth`` frames runs inside the chunk,
whose core lies far enough from its edges (the chunk overlap) to see the same
neighbours as in the whole file. As in :func:`quantile_psd`, all-zero frames are left
out; units are those of the noise model's power of the chunks' ``X``
(:meth:`avse.enhance.noise_choice._PSDModel.power`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from avse.enhance.nmf import FLOOR
from avse.errors import InputError

BINS_PER_DECADE = 100
LOG_RANGE = (-30.0, 15.0)


class QuantileHistogram:
    """Per-row quantiles of positive values added column block by column block."""

    def __init__(self, n_rows: int, lo: float = LOG_RANGE[0], hi: float = LOG_RANGE[1],
                 per_decade: int = BINS_PER_DECADE):
        self.lo, self.per_decade = float(lo), int(per_decade)
        self.n_bins = int(round((hi - lo) * per_decade))
        self.counts = torch.zeros(n_rows, self.n_bins, dtype=torch.int64)

    @property
    def n(self) -> int:
        """Values added per row."""
        return int(self.counts[0].sum()) if len(self.counts) else 0

    def add(self, values: torch.Tensor) -> None:
        """Count ``values`` (rows, T) > 0."""
        b = ((values.double().clamp_min(1e-300).log10() - self.lo) * self.per_decade).floor()
        b = b.clamp(0, self.n_bins - 1).long().cpu()
        self.counts.scatter_add_(1, b, torch.ones_like(b))

    def quantile(self, q: float) -> torch.Tensor:
        """The ``q`` quantile of each row (rows,), float64: the value of rank ``q (n - 1)``
        among the sorted values (``torch.quantile``'s convention), within one bin."""
        n = self.n
        if n == 0:
            raise InputError("QuantileHistogram: no values added")
        cum = self.counts.cumsum(1).double()                     # values in bins <= b
        rank = q * (n - 1) + 0.5                                 # centre of the order statistic
        b = torch.searchsorted(cum, torch.full((len(cum), 1), rank, dtype=torch.float64)).clamp_max(self.n_bins - 1)
        below = torch.where(b > 0, cum.gather(1, (b - 1).clamp_min(0)), torch.zeros_like(b, dtype=torch.float64))
        inside = self.counts.gather(1, b).double().clamp_min(1)
        frac = ((rank - below) / inside).clamp(0, 1)
        return torch.pow(10.0, self.lo + (b.double() + frac) / self.per_decade)[:, 0]


class FilePSD:
    """Whole-file quantile PSD of a ``stationary``-like noise model (module docstring).

    Args:
        noise_model: a :class:`avse.enhance.noise_choice.NoiseChoice` with ``file_psd``.
        frontend: the model's :class:`~avse.dsp.stft.SpectralFrontEnd`.
    """

    def __init__(self, noise_model, frontend):
        if not getattr(noise_model, "file_psd", False):
            raise InputError(f"noise model {type(noise_model).__name__} has no whole-file PSD estimate")
        self.model, self.frontend = noise_model, frontend
        conf = noise_model.psd_conf
        self.q, self.smooth, self.bias = conf["q"], conf["smooth"], conf["bias"]
        self.hist = QuantileHistogram(frontend.n_freq)

    def add(self, X: torch.Tensor, core: slice) -> None:
        """Count the frames ``core`` of a chunk's compressed STFT ``X`` (F, T) (no frame
        padding), the frames that are this chunk's alone."""
        power = self.model.power(X, self.frontend).float()
        keep = torch.zeros(power.shape[1], dtype=torch.bool, device=power.device)
        keep[core] = True
        live = power.sum(0) > 0
        p = power[:, live]
        k = min(self.smooth, p.shape[1])
        if k > 1:   # as quantile_psd; an even k gives one column more, the last is dropped
            p = F.avg_pool1d(p[None], k, stride=1, padding=k // 2, count_include_pad=False)[0, :, :p.shape[1]]
        if p.shape[1]:
            self.hist.add(p[:, keep[live]])

    def psd(self) -> torch.Tensor | None:
        """The PSD (F, 1) float32, or None when no frame with signal was added."""
        if self.hist.n == 0:
            return None
        return (self.hist.quantile(self.q) * self.bias).clamp_min(FLOOR).float()[:, None]
