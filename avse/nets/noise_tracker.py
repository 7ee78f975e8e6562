"""A network that tracks the noise power of a noisy recording, optionally told the scene.

The amortised noise model of ``noise: tracker`` (:mod:`avse.enhance.tracker_noise`): it
maps the log power spectrogram of a noisy recording to the log of the noise variance
per time-frequency bin, ``log V`` (B, F, T), the variance of the Gaussian noise model
of UDiffSE (Nortier, Sadeghi, Serizel, ICASSP 2024) made time-varying. It is trained
by maximum likelihood on the true noise of simulated mixtures
(:mod:`avse.train.noise_tracker`): a learned noise-PSD estimator, not a prior on the
noise. The speech prior stays trained on clean speech only, but a system using this
noise model has seen noisy mixtures in training (those of the training speech and the
training noises): it is not unsupervised with respect to the noise.

Conditioning on a noise embedding (issue D3, :mod:`avse.nets.noise_embed`): every
block's features are modulated by a scale and a shift predicted from the embedding
(FiLM: Perez, Strub, de Vries, Dumoulin, Courville, AAAI 2018). A learned null
embedding stands for "no condition"; training drops the condition at a rate, so one
network serves both uses.

Architecture: the ``F`` frequency bins are the channels of a 1-D network over time:
a 1x1 projection to ``hidden`` channels, ``blocks`` residual dilated convolutions
(kernel 3, dilation 1, 2, 4, ..., receptive field about ``2 ** (blocks + 1)`` frames:
it must see the pauses of speech around a frame), a 1x1 projection back to ``F``.
Scale invariance is exact: the input's mean log power is removed and added back.
"""
from __future__ import annotations

import torch
from torch import nn

LOG_FLOOR = 1e-10


class _Block(nn.Module):
    """Residual dilated convolution over time with FiLM conditioning."""

    def __init__(self, hidden: int, dilation: int, cond_dim: int):
        super().__init__()
        self.norm = nn.GroupNorm(1, hidden)
        self.conv = nn.Conv1d(hidden, hidden, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(hidden, hidden, 1)
        self.film = nn.Linear(cond_dim, 2 * hidden) if cond_dim else None
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        y = self.norm(h)
        if self.film is not None and c is not None:
            g, b = self.film(c).unsqueeze(-1).chunk(2, dim=1)
            y = y * (1 + g) + b
        return h + self.mix(torch.nn.functional.gelu(self.conv(y)))


class NoiseTracker(nn.Module):
    """``log |X|^2`` (B, F, T) [+ embedding (B, D)] -> ``log V`` (B, F, T), natural log.

    ``n_freq``: frequency bins of the front-end; ``hidden``: channels; ``blocks``:
    residual blocks; ``cond_dim``: embedding size (0: unconditioned).
    """

    def __init__(self, n_freq: int = 256, hidden: int = 128, blocks: int = 7, cond_dim: int = 0):
        super().__init__()
        self.n_freq, self.cond_dim = int(n_freq), int(cond_dim)
        self.inp = nn.Conv1d(self.n_freq, hidden, 1)
        self.blocks = nn.ModuleList(_Block(hidden, 2 ** i, self.cond_dim) for i in range(int(blocks)))
        self.out = nn.Conv1d(hidden, self.n_freq, 1)
        self.null = nn.Parameter(torch.zeros(self.cond_dim)) if self.cond_dim else None

    def forward(self, logp: torch.Tensor, cond: torch.Tensor | None = None,
                drop: torch.Tensor | None = None) -> torch.Tensor:
        """``logp`` (B, F, T): log power; ``cond`` (B, D) or None (the null embedding);
        ``drop`` (B,) bool: items whose condition is replaced by the null one."""
        if logp.dim() != 3 or logp.shape[1] != self.n_freq:
            raise ValueError(f"NoiseTracker: expected (B, {self.n_freq}, T) log power, got {tuple(logp.shape)}")
        m = logp.mean(dim=(1, 2), keepdim=True)
        c = None
        if self.cond_dim:
            null = self.null.expand(logp.shape[0], -1)
            if cond is None:
                c = null
            else:
                if cond.shape != (logp.shape[0], self.cond_dim):
                    raise ValueError(f"NoiseTracker: expected a ({logp.shape[0]}, {self.cond_dim}) "
                                     f"condition, got {tuple(cond.shape)}")
                c = cond if drop is None else torch.where(drop[:, None], null, cond)
        h = self.inp(logp - m)
        for blk in self.blocks:
            h = blk(h, c)
        return logp + self.out(h)


def log_power(Y: torch.Tensor) -> torch.Tensor:
    """``log(|Y|^2)`` of a linear STFT ``Y`` (..., F, T), the tracker's input (:func:`power_log`)."""
    return power_log(Y.abs().pow(2))


def power_log(P: torch.Tensor) -> torch.Tensor:
    """``log P`` of a power spectrogram ``P`` (..., F, T), floored at ``LOG_FLOOR``."""
    return P.clamp_min(LOG_FLOOR).log()


def is_nll(P: torch.Tensor, logV: torch.Tensor) -> torch.Tensor:
    """Mean Itakura-Saito divergence ``D(P | V)`` = Gaussian negative log-likelihood of a
    noise of power ``P`` under variance ``V = exp(logV)``, up to a constant."""
    r = P.clamp_min(LOG_FLOOR) * torch.exp(-logV)
    return (r - torch.log(r) - 1).mean()


FORMAT = "avse-noise-tracker-1"


def save_tracker(path: str, model: NoiseTracker, model_conf: dict, meta: dict) -> None:
    """Write the model file atomically: network settings, weights and ``meta`` (the
    front-end ``frontend``, the embedding model ``embed_model`` or None, ...)."""
    import os

    tmp = f"{path}.tmp{os.getpid()}"
    torch.save({"format": FORMAT, "model_conf": dict(model_conf), "state_dict": model.state_dict(),
                "meta": dict(meta)}, tmp)
    os.replace(tmp, path)


def load_tracker(path: str, device="cpu") -> tuple[NoiseTracker, dict]:
    """``(model, meta)`` of a file written by :func:`save_tracker`."""
    import os

    from avse.errors import InputError

    if not os.path.isfile(path):
        raise InputError(f"{path}: noise-tracker model not found (train it: python -m avse.bin.train_noise_tracker)")
    ck = torch.load(path, map_location=device, weights_only=False)
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise InputError(f"{path}: not a noise-tracker model file ({FORMAT})")
    model = NoiseTracker(**ck["model_conf"]).to(device)
    model.load_state_dict(ck["state_dict"])
    return model.eval(), dict(ck["meta"])
