"""A learned, time-varying noise model: ``noise: tracker``.

The noise variance of the Gaussian noise model (UDiffSE: Nortier, Sadeghi, Serizel,
ICASSP 2024) predicted per time-frequency bin from the noisy input by the noise
tracker of :mod:`avse.nets.noise_tracker` (trained by ``python -m
avse.bin.train_noise_tracker`` on mixtures of training speech and training noise),
optionally told the scene by a noise embedding (issue D3: text, picture or a noise-only
clip, the data-dir table ``noise_embed_<embed>.scp`` written by
:mod:`avse.bin.noise_condition`), then fixed during sampling, in the linear STFT domain
seen through the compression (:class:`~avse.enhance.noise_models.CompressedDomainNoise`).

Why: the blind models of this toolkit are stationary (``stationary``) or an NMF fitted
to residuals that absorb speech (``nmf``, ``embed_nmf``); neither follows babble, music
or passing cars, and the oracle bounds (``noise: oracle``, ``method: oracle_noise``)
show that a per-bin noise power is where the missing decibels are. A system with
this model has seen noisy mixtures in training: it is not unsupervised with respect
to the noise (the speech prior still is).

Measured on mini_av (``egs/mini_av/avse1/RESULTS_noise_tracker.md``; CPU prior,
UDiffSE+, ``bias: 0.5``, ``floor: 2``, tracker trained 6000 steps on 20 noise recordings
per type; SI-SDR in dB): at -5 dB in babble, cafe, music and traffic (``test_noisy_nonstat``)
blind stationary -2.92, this model blind -1.93, told the scene by text -1.92, a picture
-1.93, a noise clip -1.90: the time course gains, the condition adds at most 0.03 on unseen
noise recordings. Over all types at -5/0/+5 dB (``test_noisy``) it still loses to the
stationary model (4.22-4.28 against 4.57), on the stationary noises. With the true noise
power averaged over 5 frames (``noise: oracle``, ``smooth: 5``: the bound of a variance
model) the same sampler reaches +0.71 on ``test_noisy_nonstat``. Yet the tracker's own
variance in a plain Wiener gain (``method: wiener``, :mod:`avse.enhance.wiener`, bias 2)
gives -0.08 blind and 0.26 / 0.31 / 0.59 with text / picture / clip there: with the CPU
prior the sampler, not the tracker, loses most of the difference.

Options: ``model`` (the tracker file), ``embed`` (None: no condition, the tracker's
null embedding; ``text``, ``image``, ``clip``, ...: the table to condition on; the
tracker must have been trained with an embedding model), ``bias`` (> 0: the variance is
multiplied by it; > 1 removes more noise, as the ``bias`` of ``stationary``), ``floor``
(>= 0; 0: none): the variance is kept at or above ``floor`` times the 10 % quantile
over time of the 5-frame smoothed noisy power, per frequency
(:func:`~avse.enhance.noise_models.quantile_psd`); ``floor: 2`` is the PSD of the
recipe's ``stationary`` model (``bias: 2``), so that on steady noise the tracker is
never below it.
"""
from __future__ import annotations

import numpy as np
import torch

from avse.enhance.noise_choice import NOISES, NoiseChoice
from avse.enhance.noise_models import CompressedDomainNoise, decompress, quantile_psd
from avse.errors import InputError
from avse.nets.noise_tracker import load_tracker, power_log

_TRACKERS: dict = {}


def get_tracker(path: str):
    """``(model, meta)`` of the tracker file ``path``, loaded once per process."""
    if path not in _TRACKERS:
        _TRACKERS[path] = load_tracker(path)
    return _TRACKERS[path]


def valid_frames(power: torch.Tensor) -> int:
    """Frames of a power spectrogram (F, T) before its zero padding at the end."""
    nz = (power.sum(0) > 0).nonzero()
    return int(nz[-1]) + 1 if len(nz) else 0


@NOISES.register("tracker")
class TrackerNoise(NoiseChoice):
    """A per-bin noise variance from the noise tracker (module docstring)."""

    needs_frontend = True

    def __init__(self, model: str | None = None, embed: str | None = None, bias: float = 1.0,
                 floor: float = 0.0):
        if not model:
            raise InputError("noise model tracker: give noise_conf.model, the noise-tracker file "
                             "(python -m avse.bin.train_noise_tracker)")
        if embed is not None and not str(embed).replace("_", "").isalnum():
            raise InputError(f"noise model tracker: embed must be a plain name (text, image, clip), got {embed!r}")
        if not float(bias) > 0:
            raise InputError(f"noise model tracker: bias must be > 0, got {bias}")
        if not float(floor) >= 0:
            raise InputError(f"noise model tracker: floor must be >= 0, got {floor}")
        self.model, self.embed, self.bias, self.floor = str(model), embed, float(bias), float(floor)
        self.kw = None if embed is None else f"noise_embed_{embed}"
        self.needs = () if embed is None else (f"{self.kw}.scp",)

    def _condition(self, net, cond: dict) -> torch.Tensor | None:
        if self.kw is None:
            return None
        if not net.cond_dim:
            raise InputError(f"noise model tracker: {self.model} was trained without an embedding model; "
                             "use it with embed: null")
        if cond.get(self.kw) is None:
            raise InputError(f"noise model tracker: no embedding (keyword {self.kw}=..., the data dir's "
                             f"{self.kw}.scp: python -m avse.bin.noise_condition)")
        e = torch.as_tensor(np.asarray(cond[self.kw], dtype=np.float32)).reshape(1, -1)
        if e.shape[1] != net.cond_dim:
            raise InputError(f"noise model tracker: embedding of size {e.shape[1]}, {self.model} takes {net.cond_dim}")
        return e

    @torch.no_grad()
    def linear_psd(self, Y: torch.Tensor, **cond) -> torch.Tensor:
        """The tracked noise variance (F, T) of a linear STFT ``Y`` (F, T) in its units,
        zero on the zero-padded frames at the end."""
        net, meta = get_tracker(self.model)
        if Y.shape[0] != net.n_freq:
            raise InputError(f"noise model tracker: {self.model} tracks {net.n_freq} frequencies, the "
                             f"front-end has {Y.shape[0]} (train it with --n_fft {2 * (Y.shape[0] - 1)})")
        e = self._condition(net, cond)
        P = Y.abs().pow(2).float()
        T = valid_frames(P)
        V = torch.zeros_like(P)
        if T > 0:
            V[:, :T] = torch.exp(net(power_log(P[:, :T].cpu())[None], e)[0]).to(P.device) * self.bias
            if self.floor > 0:
                V[:, :T] = torch.maximum(V[:, :T], quantile_psd(P[:, :T], bias=self.floor))
        return V

    def observation(self, Xn, generator=None, frontend=None, measurement=None, psd=None, **cond):
        alpha = self._alpha(frontend)
        _, meta = get_tracker(self.model)
        fe = meta.get("frontend", {})
        if (fe.get("n_fft"), fe.get("hop")) != (frontend.n_fft, frontend.hop):
            raise InputError(f"noise model tracker: {self.model} was trained with n_fft {fe.get('n_fft')}, hop "
                             f"{fe.get('hop')}; the prior's front-end has {frontend.n_fft}, {frontend.hop}")
        V = self.linear_psd(decompress(Xn, alpha), **cond)
        return CompressedDomainNoise(alpha, psd=V.to(Xn.real.dtype), measurement=measurement)
