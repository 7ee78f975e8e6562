"""Oracle noise removal: ``method: oracle_noise``, the upper bound of a noise model.

Every unsupervised method here pairs a speech model with a *noise* model estimated from
the noisy input (a quantile PSD, NMF, an embedding-conditioned NMF). This enhancer uses
the true noise of a simulated mixture instead (``noise1.scp``, written by the simulation
stage) and no prior, so its rows say how much a method could gain from a perfect noise
estimate, and how much is left to the speech model or the room:

* ``gain: wiener`` (default): the power-subtraction Wiener gain
  ``G = max(1 - P_N / |Y|^2, g_min)`` per bin, with ``P_N`` the true noise power
  ``|N[f, t]|^2`` (``stat: bin``; ``smooth`` frames of moving average) or its
  long-term PSD ``mean_t |N[f, t]|^2`` (``stat: psd``: the best any stationary noise
  model can know). The spectral-subtraction Wiener filter: Lim and Oppenheim,
  "Enhancement and bandwidth compression of noisy speech", Proc. IEEE 1979.
* ``gain: subtract``: ``Y - N``, the noise removed exactly (the speech image: for a
  reverberant mixture, perfect denoising with the reverberation left).

The same true noise is a noise model of the diffusion enhancers too, ``noise: oracle``
(:class:`avse.enhance.noise_choice.Oracle`): the bound of the enhancer's own noise model.

Followed by ``wpe`` in a ``cascade`` it bounds the denoise-then-dereverberate cascade of
``egs/mini_av/avse1/conf/enhance_udiffse_plus_wpe.yaml`` (which has the blind stationary
noise model). SI-SDRi on mini_av test_reverb (against the direct path; T60 0.2-0.8 s, 0
and 10 dB SNR; ``egs/mini_av/avse1/RESULTS_oracle_noise.md``): blind UDiffSE+ then WPE
+1.88 dB; ``stat: psd`` then WPE +1.81; ``stat: bin`` then WPE +3.39; ``subtract`` then
WPE +3.99.

Inputs (enhancer interface, :mod:`avse.enhance.base`): ``X`` (F, T) complex compressed
STFT of the normalised input (frames possibly zero-padded); per utterance ``wav`` (the
mixture as read from ``wav.scp``, (N,) float) and ``noise1`` (its noise, (N',) float,
same sample rate), whose ratio fixes the normalisation of ``X``: ``X`` must be that mixture
(alone, or as the first step of a cascade); ``frontend``. Output:
the same shape and dtype as ``X``. ``last_stats``: ``nfe`` 0, ``seconds``.
"""
from __future__ import annotations

import time

import torch

from avse.enhance.base import ENHANCERS, constructor_defaults
from avse.enhance.noise_choice import ORACLE_STATS, true_noise_power, true_noise_stft
from avse.enhance.wiener import power_subtraction_gain
from avse.errors import InputError

GAINS = ("wiener", "subtract")


@ENHANCERS.register("oracle_noise")
class OracleNoise:
    """See module docstring. ``gain``: ``wiener`` or ``subtract``; ``stat``: ``bin`` or
    ``psd`` (``wiener`` only); ``smooth``: moving-average frames of the per-bin power
    (odd, >= 1); ``g_min``: gain floor in [0, 1)."""

    needs = ("frontend", "wav.scp", "noise1.scp")
    needs_grad = False
    n_sources = 1

    def __init__(self, gain: str = "wiener", stat: str = "bin", smooth: int = 1, g_min: float = 0.0):
        if gain not in GAINS or stat not in ORACLE_STATS:
            raise InputError(f"oracle_noise: gain must be one of {GAINS} and stat one of {ORACLE_STATS}, "
                             f"got {gain!r}, {stat!r}")
        if int(smooth) < 1 or int(smooth) % 2 == 0 or not 0.0 <= float(g_min) < 1.0:
            raise InputError(f"oracle_noise: need an odd smooth >= 1 and 0 <= g_min < 1, got {smooth}, {g_min}")
        self.gain, self.stat, self.smooth, self.g_min = gain, stat, int(smooth), float(g_min)
        self.last_stats: dict = {}

    def __call__(self, score_fn, sde, X: torch.Tensor, generator=None, frontend=None, wav=None,
                 noise1=None, **aux) -> torch.Tensor:
        """``X`` (F, T) complex compressed -> the same with the noise removed. ``score_fn``,
        ``sde``, ``generator``: unused (the enhancer interface)."""
        if frontend is None or wav is None or noise1 is None:
            raise InputError("oracle_noise: needs frontend=, wav= (the mixture) and noise1= (its noise)")
        if X.dim() != 2 or not X.is_complex():
            raise InputError(f"oracle_noise: X must be a complex (F, T) STFT, got {X.dtype} {tuple(X.shape)}")
        t0 = time.perf_counter()
        Y = frontend.decompress(X.to(torch.complex128))
        N, T = true_noise_stft(frontend, wav, noise1, Y)
        if self.gain == "subtract":
            S = Y - N
        else:
            P = true_noise_power(N, T, self.stat, self.smooth)
            G = power_subtraction_gain(P, Y, self.g_min)
            S = G * Y
        self.last_stats = {"nfe": 0, "seconds": time.perf_counter() - t0}
        return frontend.compress(S).to(X.dtype)


OracleNoise.DEFAULTS = constructor_defaults(OracleNoise)
