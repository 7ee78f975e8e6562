"""The measurement map from diffusion samples to the observation, in one of three domains.

The prior of :mod:`avse.diffusion` lives on *compressed* STFTs ``S`` (``(F, T)`` complex,
``c -> beta |c|^alpha e^{i angle c}``, :class:`avse.dsp.stft.SpectralFrontEnd`), and so does
the observation ``Y`` handed to an enhancer. A physical operator, however, acts on
linear STFTs or waveforms, and the compression is nonlinear. :class:`Measurement` wraps a
linear :class:`avse.enhance.operators.Operator` ``P`` (applied per source) and the sum over
``K`` sources into the map ``S -> A(S)`` in the observation domain:

=============  =====================================================  ===================
``domain``     ``A(S)``                                               linear in ``S``
=============  =====================================================  ===================
``compressed`` ``sum_k P(S_k)``                                       yes (adjoint, gain)
``stft``       ``c(sum_k P(d(S_k)))``  (``c``/``d``: (de)compression)  no
``wave``       ``c(STFT(sum_k P(iSTFT(d(S_k)))))``                    no
=============  =====================================================  ===================

Which method uses which: UDiffSE / UDiffSE+ ``compressed`` with the identity (the
closed-form step needs :attr:`gain`); informed dereverberation (``dps_informed``)
``wave`` with :class:`~avse.enhance.operators.TimeConvolution` by the known RIR; BUDDy
(``buddy``) and ``joint`` ``stft`` with the CTF room of :mod:`avse.enhance.buddy`;
separation ``stft`` with the identity (the mixture is a sum of *linear* STFTs). The
nonlinear domains are handled by DPS (autograd through ``A``) and by the
mixture-consistency projection (:meth:`project`, done in the linear domain).

Shapes: samples ``S`` are ``(b * K, F, T)`` complex with the ``K`` sources of one
posterior sample adjacent (``S.view(b, K, F, T)``); the observation ``Y`` and ``A(S)`` are
``(b, F, T)`` or ``(F, T)`` complex.
"""
from __future__ import annotations

import torch

from avse.enhance.operators import Identity, Operator, SourceSum
from avse.errors import InputError

#: how :meth:`Measurement.project` shares the mixture residual among the sources
SPLITS = ("equal", "power")

DOMAINS = ("compressed", "stft", "wave")


class Measurement:
    """``A(S)`` of the table above; ``per_source``: the operator ``P`` (default identity);
    ``frontend``: the model's :class:`SpectralFrontEnd` (needed unless ``compressed``)."""

    def __init__(self, per_source: Operator | None = None, n_sources: int = 1,
                 domain: str = "compressed", frontend=None):
        if domain not in DOMAINS:
            raise InputError(f"Measurement: unknown domain {domain!r}; choose from {DOMAINS}")
        if domain != "compressed" and frontend is None:
            raise InputError(f"Measurement: domain {domain!r} needs the spectral front-end "
                             "(frontend=...)")
        if int(n_sources) < 1:
            raise InputError(f"Measurement: need n_sources >= 1, got {n_sources}")
        self.P = per_source if per_source is not None else Identity()
        self.K, self.domain, self.fe = int(n_sources), domain, frontend
        self.op = SourceSum(self.K, dim=-2 if domain == "wave" else -3) @ self.P
        self._plain = self.K == 1 and isinstance(self.P, Identity) and domain == "compressed"

    # ------------------------------------------------------------------ plumbing
    @property
    def linear(self) -> bool:
        """True when ``A`` is linear in ``S`` (``compressed`` domain)."""
        return self.domain == "compressed"

    @property
    def gain(self):
        """Diagonal of ``A A^H`` (compressed domain, diagonal ``P``) or ``None``."""
        return self.op.gain if self.linear else None

    def split(self, S: torch.Tensor) -> torch.Tensor:
        """``(b * K, F, T) -> (b, K, F, T)``."""
        if S.shape[0] % self.K:
            raise InputError(f"Measurement: batch {S.shape[0]} is not a multiple of K = {self.K}")
        return S.reshape(S.shape[0] // self.K, self.K, *S.shape[1:])

    def merge(self, Z: torch.Tensor) -> torch.Tensor:
        """``(b, K, F, T) -> (b * K, F, T)``."""
        return Z.reshape(Z.shape[0] * Z.shape[1], *Z.shape[2:])

    def to_linear(self, C: torch.Tensor) -> torch.Tensor:
        """Compressed ``(..., F, T)`` -> the operator's domain (STFT or waveform ``(..., N)``)."""
        if self.domain == "compressed":
            return C
        X = self.fe.decompress(C)
        return X if self.domain == "stft" else self.fe.istft(X)

    def from_linear(self, Z: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_linear` (the STFT of a waveform, then compression)."""
        if self.domain == "compressed":
            return Z
        return self.fe.compress(Z if self.domain == "stft" else self.fe.stft(Z))

    # ---------------------------------------------------------------- the map
    def forward(self, S: torch.Tensor) -> torch.Tensor:
        """``A(S)``: ``(b * K, F, T) -> (b, F, T)`` compressed (differentiable)."""
        if self._plain:
            return S
        return self.from_linear(self.op.forward(self.to_linear(self.split(S))))

    __call__ = forward

    def adjoint(self, R: torch.Tensor) -> torch.Tensor:
        """``A^H R``: ``(b, F, T) -> (b * K, F, T)``; only in the linear domain."""
        if self._plain:
            return R
        if not self.linear:
            raise InputError(f"Measurement: no adjoint in the nonlinear {self.domain!r} domain; "
                             "use DPS guidance")
        return self.merge(self.op.adjoint(R))

    def project(self, S: torch.Tensor, Y: torch.Tensor, split: str = "equal") -> torch.Tensor:
        """Mixture-consistency projection of ``S`` onto ``{A(S) = Y}`` in the linear domain.

        ``split="equal"``: ``Z + A^H (Y_lin - A Z) / gain`` with ``Z`` the linear-domain
        sources (the orthogonal projection, exact for ``A A^H = gain I``, e.g. a sum of ``K``
        sources: the residual shared equally). ``split="power"`` (a plain sum of sources):
        the residual shared in proportion to each source's power in the bin,
        ``Z_k + |Z_k|^2 / sum_j |Z_j|^2 (Y_lin - sum_j Z_j)``: the Wiener split, i.e. the
        posterior mean of independent zero-mean Gaussian sources of those variances given
        their sum (the weighted mixture consistency of Wisdom et al., "Differentiable
        consistency constraints for improving deep speech enhancement", ICASSP 2019).
        Returns ``(b * K, F, T)`` compressed."""
        gain = self.op.gain
        if gain is None:
            raise InputError("Measurement.project needs a diagonal operator (identity or a sum "
                             f"of sources), got {type(self.P).__name__}")
        if split not in SPLITS:
            raise InputError(f"Measurement.project: split must be one of {SPLITS}, got {split!r}")
        Z = self.to_linear(self.split(S))
        Yl = self.to_linear(Y)
        R = Yl - self.op.forward(Z)
        if split == "power":
            if not isinstance(self.P, Identity) or self.domain == "wave":
                raise InputError("a power-weighted projection needs a plain sum of STFT sources (separation); "
                                 f"this operator is {type(self.P).__name__} in the {self.domain!r} domain")
            v = Z.abs() ** 2 + torch.finfo(torch.float32).tiny
            return self.merge(self.from_linear(Z + v / v.sum(dim=1, keepdim=True) * R.unsqueeze(1)))
        return self.merge(self.from_linear(Z + self.op.adjoint(R / gain)))
