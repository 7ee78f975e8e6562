"""Noise models for the UDiffSE family beyond the paper's NMF in the compressed domain.

UDiffSE (Nortier et al., ICASSP 2024) models the noise as additive and Gaussian *in the
compressed domain*: ``X_c = S_c + N_c``. The compression ``c(z) = beta |z|^alpha
exp(i angle z)`` (alpha = 0.5) is not additive, so the residual ``X_c - S_c`` of a
stationary noise is not stationary: it is small where speech dominates and large where
it does not. This module holds the pieces of the noise models of
:mod:`avse.enhance.noise_choice` (``noise: nmf | stationary`` with ``noise_conf``):

* ``domain: linear`` (:class:`CompressedDomainNoise`): the noise is additive and
  Gaussian in the *linear* STFT domain, ``X = S + N``, ``N ~ CN(0, P)``, and its
  variance in the compressed domain is derived from ``P`` and the current estimate of
  the speech magnitude ``|S|`` by linearising ``c`` (first-order error propagation):

  - where speech dominates, ``c(S + N) - c(S) ~ |S|^(alpha-1) (alpha n_r + i n_i)`` with
    ``n_r, n_i`` the radial and tangential parts of ``N``: variance
    ``V_hi = (alpha^2 + 1) / 2 * P * |S|^(2 (alpha - 1))``;
  - where noise dominates, ``c(N)``: variance ``V_lo = Gamma(1 + alpha) P^alpha``;
  - in between, a soft minimum ``V = (V_lo^-p + V_hi^-p)^(-1/p)``, ``p = 4``
    (:data:`SOFTMIN_POWER`): within 7 % of Monte-Carlo values from -20 to +30 dB
    local SNR (the harmonic mean, ``p = 1``, is up to 40 % low near 0 dB; both gave
    the same SI-SDR on mini_av).

  All in the enhancer's normalised units (``X_c / max |X_c|``), where ``beta`` drops
  out: the "linear" spectrogram of a normalised compressed one ``C`` is
  ``|C|^(1/alpha) exp(i angle C)`` (:func:`decompress`). The speech estimate is the
  Tweedie estimate of the running reverse pass, refreshed before every likelihood step
  (:meth:`CompressedDomainNoise.track`), so ``V`` follows the speech as it emerges.
  ``P`` is either fixed (``noise: stationary``) or an IS-NMF (``nmf``) fitted to
  the *linear* residual power ``|X - S|^2`` in the M-steps.
* ``noise: stationary``: a per-frequency noise PSD estimated once from the noisy
  input by :func:`quantile_psd` (a low quantile over time of the smoothed power, as in
  minimum-statistics noise tracking, Martin, IEEE TSAP 2001) and kept fixed (no
  M-step). In the compressed domain it is :class:`~avse.enhance.likelihood.FixedVarianceNoise`.
* ``noise: nmf`` with ``init: quantile``: the NMF starts from that PSD instead of a random one.

Measured on mini_av 0 dB mixtures with the 1000-step CPU prior (8 utterances,
UDiffSE+): SI-SDRi +3.6 dB (NMF, compressed: the paper) -> +4.4 (stationary,
compressed) -> +5.5 (stationary, linear); the NMF fitted to residuals of the (shrunk)
speech estimates absorbs speech, a fixed stationary PSD does not.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from avse.dsp.stft import powlaw
from avse.enhance.likelihood import GaussianObservation
from avse.enhance.nmf import FLOOR, NMF
from avse.errors import InputError

NOISE_DOMAINS = ("compressed", "linear")
NOISE_INITS = ("random", "quantile")
#: exponent of the soft minimum joining the two asymptotes of the compressed-domain variance
SOFTMIN_POWER = 4.0


def decompress(C: torch.Tensor, alpha: float) -> torch.Tensor:
    """Normalised compressed spectrogram -> its linear counterpart ``|C|^(1/alpha) e^(i angle C)``
    (same shape, complex; the front-end's inverse power law with ``beta = 1``)."""
    return powlaw(C, 1.0 / alpha)


def quantile_psd(power: torch.Tensor, q: float = 0.1, smooth: int = 5, bias: float = 4.0
                 ) -> torch.Tensor:
    """Stationary noise PSD (F, 1) from a power spectrogram ``power`` (F, T).

    The power is averaged over ``smooth`` frames (a centred moving average), then its
    ``q`` quantile over time is taken per frequency and multiplied by ``bias``. The low
    quantile finds the speech pauses; ``bias`` corrects for taking a low quantile of a
    fluctuating estimate (about 2 for ``q = 0.1``, 5 frames) and deliberately
    over-estimates on top of that (4 by default: measured best on mini_av, where it
    lets the prior decide in the bins the noise partly covers). All-zero frames (the
    frame padding) are ignored. Floored at ``1e-10``.
    """
    if power.dim() != 2:
        raise InputError(f"quantile_psd: need a (F, T) power spectrogram, got {tuple(power.shape)}")
    if not (0.0 <= q <= 1.0 and int(smooth) >= 1 and bias > 0):
        raise InputError(f"quantile_psd: need 0 <= q <= 1, smooth >= 1, bias > 0; got {q}, {smooth}, {bias}")
    p = power[:, power.sum(0) > 0]
    if p.shape[1] == 0:
        return torch.full((power.shape[0], 1), FLOOR, dtype=power.dtype, device=power.device)
    k = min(int(smooth), p.shape[1])
    if k > 1:
        p = F.avg_pool1d(p[None], k, stride=1, padding=k // 2, count_include_pad=False)[0]
    return (torch.quantile(p, q, dim=1, keepdim=True) * bias).clamp_min(FLOOR)


class CompressedDomainNoise(GaussianObservation):
    """Linear-domain Gaussian noise seen through the compression (module docstring).

    ``psd``: the linear noise PSD ``P``, real, broadcastable to (F, T) (fixed), or
    ``nmf``: an :class:`~avse.enhance.nmf.NMF` whose ``W H`` is ``P`` and which the
    M-steps update (``n_iter`` rounds) on the linear residual power. ``alpha``: the
    front-end's compression exponent. :meth:`variance` is the compressed-domain
    variance (B, F, T) once a speech estimate was tracked, else its noise-only value
    ``Gamma(1 + alpha) P^alpha``.
    """

    tracks_speech = True

    def __init__(self, alpha: float, psd: torch.Tensor | None = None, nmf: NMF | None = None,
                 n_iter: int = 1, measurement=None):
        if (psd is None) == (nmf is None):
            raise InputError("CompressedDomainNoise: give exactly one of psd= and nmf=")
        if not 0.0 < float(alpha) <= 1.0:
            raise InputError(f"CompressedDomainNoise: need 0 < alpha <= 1, got {alpha}")
        self.alpha, self.psd, self.nmf, self.n_iter = float(alpha), psd, nmf, int(n_iter)
        self.measurement = measurement
        self.speech_power: torch.Tensor | None = None    # |S|^2, linear, (F, T)
        self.last_divergence: float | None = None

    def linear_psd(self) -> torch.Tensor:
        """``P`` (linear noise PSD), real, broadcastable to (F, T)."""
        return self.nmf.variance() if self.nmf is not None else self.psd

    def track(self, S0: torch.Tensor) -> torch.Tensor:
        """Take ``S0`` (B, F, T) (compressed, normalised; e.g. the Tweedie estimate) as
        the current speech estimate: ``|S|^2`` = mean over the batch of ``|Z|^2``,
        ``Z = decompress(A S0)``; returns ``Z`` (B, F, T)."""
        Z = decompress(self.forward(S0), self.alpha)
        self.speech_power = Z.abs().pow(2).mean(0)
        return Z

    def variance(self) -> torch.Tensor:
        a = self.alpha
        P = self.linear_psd().clamp_min(FLOOR)
        v_lo = math.gamma(1.0 + a) * P.pow(a)
        if self.speech_power is None:
            return v_lo
        v_hi = P * (a * a + 1.0) / 2.0 / self.speech_power.clamp_min(1e-30).pow(1.0 - a)
        return (v_lo.pow(-SOFTMIN_POWER) + v_hi.pow(-SOFTMIN_POWER)).pow(-1.0 / SOFTMIN_POWER)

    def m_step(self, X: torch.Tensor, S0: torch.Tensor):
        """Track ``S0``; with an NMF, one IS-NMF M-step on ``mean_B |dec(X) - dec(A S0)|^2``
        (linear units); returns the divergence or None."""
        Z = self.track(S0)
        if self.nmf is None:
            return None
        R = decompress(X, self.alpha) - Z
        div = self.nmf.update(R.abs().pow(2).mean(0).clamp_min(FLOOR), self.n_iter)
        self.last_divergence = float(div)
        return div
