"""SpectralFrontEnd: STFT conventions, exact round trip, compression, frame padding."""
import numpy as np
import pytest
import torch

from avse.dsp import SpectralFrontEnd
from avse.errors import InputError
from testutils import speechlike


def rel_err(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("n", [16000, 16001, 12345, 2000, 128 * 257, 511])
def test_round_trip_random_and_speechlike(n):
    fe = SpectralFrontEnd()
    x = torch.randn(3, n, generator=torch.Generator().manual_seed(n))
    x[1] = torch.from_numpy(speechlike(n / 16000 + 0.01, seed=1)[:n])
    x[2] *= 1e-3  # quiet signal: compression must not lose it
    C = fe(x)
    assert C.shape == (3, 256, fe.n_frames(n)) and C.dtype == torch.complex64
    y = fe.inverse(C, n)
    assert y.shape == x.shape
    for i in range(3):
        assert rel_err(y[i], x[i]) < 1e-5


def test_one_dimensional_and_float64_inputs_keep_their_shape_and_dtype():
    fe = SpectralFrontEnd()
    x = torch.randn(4000, dtype=torch.float64)
    C = fe(x)
    assert C.shape == (256, fe.n_frames(4000)) and C.dtype == torch.complex128
    assert rel_err(fe.inverse(C, 4000), x) < 1e-12
    xb = torch.randn(2, 3, 1000)  # extra leading dims are kept
    assert fe.stft(xb).shape == (2, 3, 256, 8) and fe.inverse(fe(xb), 1000).shape == (2, 3, 1000)


def test_stft_matches_a_manual_periodic_hann_frame():
    fe = SpectralFrontEnd()
    x = np.random.default_rng(0).standard_normal(3000)
    X = fe.stft(torch.from_numpy(x)).numpy()
    xp = np.pad(x, 255, mode="reflect")
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(510) / 510)  # periodic Hann
    for t in (0, 5, X.shape[-1] - 1):
        ref = np.fft.rfft(xp[t * 128: t * 128 + 510] * win)
        np.testing.assert_allclose(X[:, t], ref, rtol=1e-9, atol=1e-9)
    assert fe.n_frames(3000) == X.shape[-1] == 3000 // 128 + 1


def test_compress_formula_inverse_and_zero_safety():
    fe = SpectralFrontEnd()
    g = torch.Generator().manual_seed(0)
    X = torch.randn(2, 256, 20, dtype=torch.complex64, generator=g) * 10
    X[0, :5] = 0
    C = fe.compress(X)
    ref = 0.15 * X.abs() ** 0.5 * torch.exp(1j * torch.angle(X))
    torch.testing.assert_close(C, ref.to(C.dtype), rtol=1e-5, atol=1e-7)
    assert torch.all(C[0, :5] == 0)
    torch.testing.assert_close(fe.decompress(C), X, rtol=1e-5, atol=1e-5)
    Xg = X.clone().requires_grad_(True)
    loss = fe.compress(Xg).abs().sum() + fe.decompress(fe.compress(Xg)).real.sum()
    loss.backward()
    assert torch.isfinite(torch.view_as_real(Xg.grad)).all()
    Z = torch.zeros(3, 256, 4, dtype=torch.complex64, requires_grad=True)
    out = fe.decompress(fe.compress(Z))
    assert torch.all(out == 0)
    out.real.sum().backward()
    assert torch.isfinite(torch.view_as_real(Z.grad)).all()


def test_compress_can_be_disabled():
    fe = SpectralFrontEnd(alpha=1.0, beta=1.0)
    x = torch.randn(1, 3000)
    torch.testing.assert_close(fe(x), fe.stft(x))


@pytest.mark.parametrize("T", [1, 63, 64, 65, 200])
def test_pad_and_crop_frames_are_exact(T):
    fe = SpectralFrontEnd()
    C = torch.randn(2, 256, T, dtype=torch.complex64)
    P, T0 = fe.pad_frames(C)
    assert T0 == T and P.shape[-1] % 64 == 0 and P.shape[-1] - T < 64 and P.dtype == C.dtype
    assert torch.equal(P[..., :T], C) and torch.all(P[..., T:] == 0)
    assert torch.equal(fe.crop_frames(P, T0), C)
    P8, _ = fe.pad_frames(C, multiple=8)
    assert P8.shape[-1] % 8 == 0
    R, _ = fe.pad_frames(torch.randn(256, T))  # real tensors too
    assert R.shape[-1] == P.shape[-1]


def test_bad_inputs_are_rejected():
    fe = SpectralFrontEnd()
    with pytest.raises(InputError):
        fe.stft(torch.randn(100))  # shorter than the reflect padding
    with pytest.raises(InputError):
        fe.istft(torch.randn(2, 100, 5, dtype=torch.complex64))
    with pytest.raises(InputError):
        SpectralFrontEnd(window="kaiser")
    with pytest.raises(InputError):
        fe.crop_frames(torch.zeros(256, 10), 11)
