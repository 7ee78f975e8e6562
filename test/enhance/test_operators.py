"""Observation operators (avse.enhance.operators) and the measurement map
(avse.enhance.measurement): linearity, exact adjoints, gains, domains, projection."""
import numpy as np
import pytest
import torch

from avse.dsp.stft import SpectralFrontEnd
from avse.enhance.operators import (CTFConvolution, Identity, Scale, SourceSum, TimeConvolution,
                                    relative_rir)
from avse.enhance.measurement import Measurement
from avse.errors import InputError


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def _inner(a, b):
    return complex((a * b.conj()).sum()) if a.is_complex() else complex((a * b).sum())


def _cases(g):
    H = torch.randn(5, 4, dtype=torch.complex128, generator=g)
    Hk = torch.randn(2, 5, 4, dtype=torch.complex128, generator=g)
    h = torch.randn(50, dtype=torch.float64, generator=g)
    return [  # (name, operator, input shape, complex)
        ("identity", Identity(), (3, 5, 7), True),
        ("scale", Scale(torch.randn(5, 7, dtype=torch.complex128, generator=g)), (3, 5, 7), True),
        ("sum", SourceSum(2), (3, 2, 5, 7), True),
        ("ctf", CTFConvolution(H), (3, 5, 7), True),
        ("ctf_per_source", CTFConvolution(Hk), (3, 2, 5, 7), True),
        ("time", TimeConvolution(h), (3, 200), False),
        ("sum_of_ctf", SourceSum(2) @ CTFConvolution(Hk), (3, 2, 5, 7), True),
        ("sum_of_time", SourceSum(2, dim=-2) @ TimeConvolution(torch.stack([h, h.flip(0)])),
         (3, 2, 200), False),
    ]


@pytest.mark.parametrize("idx", range(8))
def test_linear_with_exact_adjoint(idx):
    g = torch.Generator().manual_seed(idx)
    name, op, shape, cplx = _cases(g)[idx]
    dt = torch.complex128 if cplx else torch.float64
    x1, x2 = (torch.randn(shape, dtype=dt, generator=g) for _ in range(2))
    a, b = 0.7 - 0.3j if cplx else 0.7, -1.2
    torch.testing.assert_close(op(a * x1 + b * x2), a * op(x1) + b * op(x2))
    y = torch.randn(op(x1).shape, dtype=dt, generator=g)
    lhs, rhs = _inner(op(x1), y), _inner(x1, op.adjoint(y))
    assert abs(lhs - rhs) < 1e-9 * max(1.0, abs(lhs)), (name, lhs, rhs)


def test_convolutions_match_numpy_and_gains():
    g = torch.Generator().manual_seed(0)
    h, x = torch.randn(30, dtype=torch.float64, generator=g), torch.randn(100, dtype=torch.float64, generator=g)
    np.testing.assert_allclose(TimeConvolution(h)(x).numpy(), np.convolve(x, h)[:100], atol=1e-10)
    H = torch.randn(3, 4, dtype=torch.complex128, generator=g)
    X = torch.randn(3, 9, dtype=torch.complex128, generator=g)
    ref = np.stack([np.convolve(X[f].numpy(), H[f].numpy())[:9] for f in range(3)])
    np.testing.assert_allclose(CTFConvolution(H)(X).numpy(), ref, atol=1e-10)
    # diagonal gains (A A^H) where defined, None where A A^H is not diagonal
    assert Identity().gain == 1.0 and SourceSum(3).gain == 3.0
    assert (SourceSum(2) @ Identity()).gain == 2.0
    assert CTFConvolution(H).gain is None and TimeConvolution(h).gain is None
    assert (SourceSum(2) @ CTFConvolution(H)).gain is None
    torch.testing.assert_close(CTFConvolution(H[:, :1]).gain, H[:, :1].abs() ** 2)
    with pytest.raises(InputError, match="expected 2 sources"):
        SourceSum(2)(torch.zeros(1, 3, 4, 5))


def test_relative_rir_aligns_direct_path():
    h = np.zeros((2, 40))
    h[0, 7], h[0, 12], h[1, 3] = 0.5, 0.25, 1.0
    r = relative_rir(h, fractional=False)      # microphone 0
    assert r[0] == 1.0 and r[5] == 0.5 and len(r) == 33
    with pytest.raises(InputError, match="non-zero"):
        relative_rir(np.zeros(10))
    # a direct path at a fractional delay (windowed sinc, as the image method writes it):
    # target = s * direct, image = s * h; target * relative_rir(h) must give the image
    rng = np.random.default_rng(0)
    n = np.arange(600)
    lag = n - 40.37
    direct = 0.6 * np.sinc(lag) * np.where(np.abs(lag) < 40, 0.5 + 0.5 * np.cos(np.pi * lag / 40), 0)
    tail = np.where(n > 60, 0.05 * rng.standard_normal(600) * np.exp(-(n - 60) / 150.0), 0.0)
    h = direct + tail
    s = rng.standard_normal(4000)
    target, image = np.convolve(s, direct)[:4000], np.convolve(s, h)[:4000]
    def err_db(rel):
        pred = np.convolve(target, rel)[:4000]
        return 10 * np.log10(np.sum(image[100:] ** 2) / np.sum((image - pred)[100:] ** 2))
    frac, integer = err_db(relative_rir(h)), err_db(relative_rir(h, fractional=False))
    assert frac > 18.0 and frac > integer + 10.0, (frac, integer)   # measured 22.6 vs 3.1 dB


def test_measurement_domains_and_projection():
    fe = SpectralFrontEnd(n_fft=62, hop=16)
    g = torch.Generator().manual_seed(3)
    waves = torch.randn(2, 2, 800, dtype=torch.float64, generator=g)   # (b, K, N)
    S = fe(waves).reshape(4, *fe(waves).shape[-2:])                      # (b*K, F, T)
    mix = fe(waves.sum(1))                                               # (b, F, T)
    # the sum of K sources in the compressed world is compress(sum of linear STFTs)
    for domain in ("stft", "wave"):
        m = Measurement(n_sources=2, domain=domain, frontend=fe)
        assert not m.linear and m.gain is None
        torch.testing.assert_close(m(S), mix, atol=1e-6, rtol=1e-5)
    # time-domain convolution in the wave domain = STFT of the convolved waveform
    h = torch.randn(40, dtype=torch.float64, generator=g) * 0.3
    m = Measurement(TimeConvolution(h), domain="wave", frontend=fe)
    x = waves[0, :1]
    torch.testing.assert_close(m(fe(x)), fe(TimeConvolution(h)(x)), atol=1e-6, rtol=1e-5)
    # compressed domain: linear, adjoint = copy, gain K
    mc = Measurement(n_sources=2)
    assert mc.linear and mc.gain == 2.0
    torch.testing.assert_close(mc(S), S.reshape(2, 2, *S.shape[1:]).sum(1))
    # projection onto the mixture: consistent, and the identity on consistent sources
    Y = mix[0]
    noisy = S + 0.05 * torch.randn(S.shape, dtype=S.dtype, generator=g)
    m = Measurement(n_sources=2, domain="stft", frontend=fe)
    P = m.project(noisy, Y)
    torch.testing.assert_close(m(P), Y.expand(2, *Y.shape), atol=1e-6, rtol=1e-5)
    exact = S.reshape(2, 2, *S.shape[1:])[:1].expand(2, 2, *S.shape[1:]).reshape(S.shape)
    torch.testing.assert_close(m.project(exact, Y), exact, atol=1e-6, rtol=1e-5)
    with pytest.raises(InputError, match="diagonal"):
        Measurement(TimeConvolution(h), domain="wave", frontend=fe).project(S[:1], Y)
    with pytest.raises(InputError, match="front-end"):
        Measurement(domain="stft")
    with pytest.raises(InputError, match="adjoint"):
        Measurement(n_sources=2, domain="stft", frontend=fe).adjoint(Y[None])


def test_power_split_projection_is_the_wiener_posterior_mean():
    """split="power": consistent with the mixture, the identity on consistent sources, and
    the residual goes to each source in proportion to its power in the bin (a silent
    source gets none of it)."""
    fe = SpectralFrontEnd(n_fft=62, hop=16)
    g = torch.Generator().manual_seed(5)
    waves = torch.randn(1, 2, 800, dtype=torch.float64, generator=g)
    waves[0, 1, :400] = 0.0                                   # source 2 silent in the first half
    S = fe(waves).reshape(2, *fe(waves).shape[-2:])
    Y = fe(waves.sum(1))[0]
    m = Measurement(n_sources=2, domain="stft", frontend=fe)
    exact = S
    torch.testing.assert_close(m.project(exact, Y, "power"), exact, atol=1e-6, rtol=1e-5)
    noisy = S + 0.05 * torch.randn(S.shape, dtype=S.dtype, generator=g)
    P = m.project(noisy, Y, "power")
    torch.testing.assert_close(m(P), Y[None], atol=1e-6, rtol=1e-5)
    # by hand in the linear domain: Z_k + |Z_k|^2 / sum |Z_j|^2 (Y - sum Z_j)
    Z, Yl = fe.decompress(noisy), fe.decompress(Y)
    v = Z.abs() ** 2
    want = fe.compress(Z + v / v.sum(0, keepdim=True) * (Yl - Z.sum(0)))
    torch.testing.assert_close(P, want, atol=1e-6, rtol=1e-5)
    # the equal split is different (it shares the residual whatever the powers)
    assert not torch.allclose(P, m.project(noisy, Y))
    with pytest.raises(InputError, match="split must be"):
        m.project(noisy, Y, "median")
    with pytest.raises(InputError, match="plain sum"):
        Measurement(n_sources=2, domain="wave", frontend=fe).project(noisy, Y, "power")
