"""Forward SDEs for score-based diffusion on complex spectrograms.

An SDE ``dx = f(x, t) dt + g(t) dw`` on ``t in [t_eps, T]`` with a Gaussian marginal
``x_t ~ N(mu_t * x0, sigma_t^2 I)``. Tensors are complex spectrograms ``(B, F, T)``
complex64 (or any shape); ``t`` is a ``(B,)`` float tensor (or a Python float) and is
broadcast over the trailing axes. Complex white noise ``z`` has unit total variance
(real and imaginary parts each with variance 1/2), as ``torch.randn_like`` gives
for complex tensors.

New SDEs subclass :class:`SDE` and register in :data:`SDES`.
"""
import math
from abc import ABC, abstractmethod

import torch

from avse.utils.registry import Registry

SDES = Registry("sde")


def _bcast(v: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """Reshape a ``(B,)`` tensor (or scalar) to broadcast against ``like`` ``(B, ...)``."""
    if not torch.is_tensor(v):
        return torch.as_tensor(v, dtype=torch.float32, device=like.device)
    return v.reshape(v.shape + (1,) * (like.dim() - v.dim()))


class SDE(ABC):
    """Interface of a forward SDE with a closed-form Gaussian marginal."""

    T: float = 1.0
    t_eps: float = 0.03

    @abstractmethod
    def drift(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """f(x, t), same shape as ``x``."""

    @abstractmethod
    def diffusion(self, t: torch.Tensor | float) -> torch.Tensor:
        """g(t), a float tensor of the shape of ``t``."""

    @abstractmethod
    def marginal(self, t: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu_t, sigma_t)``: x_t = mu_t * x0 + sigma_t * z; tensors of the shape of ``t``."""

    def perturb(self, x0: torch.Tensor, t: torch.Tensor, z: torch.Tensor | None = None):
        """Sample ``x_t`` from the marginal. Returns ``(x_t, z, sigma_t)`` with
        ``sigma_t`` broadcastable to ``x0``."""
        if z is None:
            z = torch.randn_like(x0)
        mu, sigma = self.marginal(t)
        mu, sigma = _bcast(mu, x0), _bcast(sigma, x0)
        return mu * x0 + sigma * z, z, sigma

    def prior_sample(self, shape, device=None, dtype=torch.complex64, generator=None) -> torch.Tensor:
        """A draw of the (zero-mean) terminal distribution ``N(0, sigma_T^2)``."""
        _, sigma = self.marginal(torch.tensor(self.T))
        z = torch.randn(shape, device=device, dtype=dtype, generator=generator)
        return sigma.to(z.real.dtype).to(z.device) * z

    def timesteps(self, n: int, device=None, start: float | None = None) -> torch.Tensor:
        """``n`` uniformly spaced times from ``start`` (default ``T``) down to ``t_eps``
        (inclusive); ``t_eps < start <= T``."""
        start = self.T if start is None else float(start)
        if not self.t_eps < start <= self.T:
            raise ValueError(f"timesteps: need t_eps < start <= T, got start {start} "
                             f"(t_eps {self.t_eps}, T {self.T})")
        return torch.linspace(start, self.t_eps, n, device=device)


@SDES.register("ouve")
class OUVE(SDE):
    """Ornstein-Uhlenbeck SDE with exploding variance and the mean term removed.

    dx = -theta x dt + g(t) dw, g(t) = sigma_min (sigma_max/sigma_min)^t sqrt(2 L),
    L = ln(sigma_max/sigma_min); marginal mean ``exp(-theta t) x0`` and variance
    ``sigma_min^2 ((sigma_max/sigma_min)^(2t) - exp(-2 theta t)) L / (theta + L)``.

    The unconditional-prior form of the OUVE SDE of SGMSE+ (Richter et al., 2023) used
    by UDiffSE (Nortier, Sadeghi, Serizel, ICASSP 2024): the noisy-speech mean term
    is dropped, so the process diffuses clean speech towards zero.
    """

    def __init__(self, theta: float = 1.5, sigma_min: float = 0.05, sigma_max: float = 0.5,
                 t_eps: float = 0.03, T: float = 1.0):
        if not (0 < sigma_min < sigma_max):
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        if not (0 < t_eps < T):
            raise ValueError(f"need 0 < t_eps < T, got {t_eps}, {T}")
        self.theta = float(theta)
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self.t_eps = float(t_eps)
        self.T = float(T)
        self.logsig = math.log(self.sigma_max / self.sigma_min)

    def _t(self, t) -> torch.Tensor:
        return t if torch.is_tensor(t) else torch.tensor(float(t))

    def drift(self, x, t):
        return -self.theta * x

    def diffusion(self, t):
        t = self._t(t)
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t * math.sqrt(2 * self.logsig)

    def marginal(self, t):
        t = self._t(t)
        mu = torch.exp(-self.theta * t)
        var = (self.sigma_min ** 2
               * ((self.sigma_max / self.sigma_min) ** (2 * t) - torch.exp(-2 * self.theta * t))
               * self.logsig / (self.theta + self.logsig))
        return mu, torch.sqrt(var)
