"""avse.enhance.chunked: chunk sizes, cross-fade, and chunked = unchunked where the enhancer is local.

A Wiener filter written as a :class:`DiffusionEnhancer` (it uses the enhancer's noise model
and ``noise_psd`` path, and nothing random) is the "chunk-able" enhancer: with the noise
PSD of the whole file, enhancing in chunks must give what enhancing the whole file gives.
"""
import numpy as np
import pytest
import soundfile as sf
import torch

from avse.dsp.stft import SpectralFrontEnd
from avse.enhance.base import DiffusionEnhancer
from avse.enhance.chunked import ChunkedEnhancer, chunk_samples, chunk_unit, crossfade, enhance_waveform
from avse.errors import InputError
from avse.io.stream import AudioReader
from avse.nets.storage import LoadedModel
from testutils import speechlike

FS = 16000
FE = SpectralFrontEnd(n_fft=126, hop=32)


class Wiener(DiffusionEnhancer):
    """``S = max(0.1, 1 - V / |X|^2) X`` with the noise model's variance ``V``."""

    def _run(self, score_fn, sde, Xn, generator, **aux):
        V = self._noise(Xn, generator, aux.get("frontend"), psd=aux.get("noise_psd")).variance()
        return ((1 - V / Xn.abs().pow(2).clamp_min(1e-12)).clamp_min(0.1) * Xn)[None], {}


def _enhance(path, out, chunk_s, overlap_s, noise=None, domain="compressed"):
    """Enhance ``path`` into ``out`` with the Wiener filter; returns (stats, output, noise PSDs given)."""
    enh = Wiener(noise=noise or "stationary", noise_conf={"domain": domain} if noise is None else None)
    m = LoadedModel(model=None, sde=object(), frontend=FE, fs=FS)
    given = []

    def fn(x, start, i, psd):
        given.append(psd)
        aux = {"frontend": FE} if psd is None else {"frontend": FE, "noise_psd": psd}
        return enhance_waveform(m, enh, x, torch.Generator().manual_seed(i), **aux)[0]

    st = ChunkedEnhancer(FE, FS, *chunk_samples(FS, FE, chunk_s, overlap_s), enh.noise_model)(
        AudioReader(path, FS), out, fn)
    return st, sf.read(out, dtype="float32")[0], given


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """6 s of speech-like sound whose level rises threefold, in steady noise."""
    rng = np.random.default_rng(0)
    x = speechlike(6.0, seed=1) * np.linspace(0.3, 1.0, 6 * FS, dtype=np.float32)
    x = x + 0.05 * rng.standard_normal(len(x)).astype(np.float32)
    p = str(tmp_path_factory.mktemp("chunked") / "noisy.wav")
    sf.write(p, x, FS, subtype="FLOAT")
    return p, x


def test_chunk_sizes_are_whole_hops_and_video_frames():
    assert chunk_unit(16000, 128) == 128 and chunk_unit(16000, 128, video=True) == 640
    assert chunk_unit(8000, 32, video=True) == 320 and chunk_unit(11111, 100, video=True) == 100
    assert chunk_samples(FS, FE, 10.0, 1.0) == (160000, 16000)
    assert chunk_samples(FS, FE, 1.011, 0.0) == (16192, 256)   # rounded up; overlap at least 2 n_fft
    assert chunk_samples(FS, FE, 1.01, 0.0, video=True) == (16640, 640)
    with pytest.raises(InputError, match="at least twice the overlap"):
        chunk_samples(FS, FE, 1.0, 0.8)
    w = crossfade(640)
    assert np.all(np.diff(w) > 0) and w[0] < 1e-5 and w[-1] > 1 - 1e-5
    np.testing.assert_allclose(w + w[::-1], 1.0, atol=1e-6)   # falling = 1 - rising, mirrored


@pytest.mark.parametrize("domain", ["compressed", "linear"])
def test_chunked_equals_whole_file_with_the_file_noise_psd(noisy, tmp_path, domain):
    path, x = noisy
    st1, whole, given1 = _enhance(path, str(tmp_path / "whole.wav"), 60.0, 1.0, domain=domain)
    st8, chunked, given8 = _enhance(path, str(tmp_path / "chunked.wav"), 1.0, 0.25, domain=domain)
    assert st1["chunks"] == 1 and given1 == [None] and not st1["file_psd"]
    assert st8["chunks"] == 8 and st8["file_psd"] and len(given8) == 8
    assert all(g is given8[0] for g in given8)   # one estimate, every chunk
    assert len(whole) == len(chunked) == len(x)
    err = np.sum((whole - chunked) ** 2) / np.sum(whole ** 2)
    assert err < 1e-5, 10 * np.log10(err)
    # seams: no step where chunks meet (sample differences no larger than elsewhere)
    d, d_whole = np.abs(np.diff(chunked)), np.abs(np.diff(whole))
    for seam in range(12000, len(x) - 4000, 12000):   # overlaps [seam, seam + 4000)
        assert d[seam - 500:seam + 4500].max() <= 1.05 * d_whole[seam - 500:seam + 4500].max()


def test_a_noise_model_without_a_file_estimate_estimates_per_chunk(noisy, tmp_path):
    path, x = noisy
    st, y, given = _enhance(path, str(tmp_path / "nmf.wav"), 1.0, 0.25, noise="nmf")
    assert not st["file_psd"] and given == [None] * 8 and len(y) == len(x)
    with pytest.raises(InputError, match="takes no noise PSD"):
        Wiener(noise="nmf")(None, None, FE(torch.from_numpy(x[:4000])), frontend=FE,
                            noise_psd=torch.ones(64, 1))


def test_passthrough_and_exact_lengths(tmp_path):
    z = str(tmp_path / "zeros.wav")
    sf.write(z, np.zeros(5 * 8000, np.float32), 8000)
    st, y, given = _enhance(z, str(tmp_path / "z_out.wav"), 1.0, 0.25)
    assert st["passthrough"] == "all-zero input" and given == [] and y.shape == (40000,) and not np.any(y)
    s = str(tmp_path / "short.wav")
    sf.write(s, 0.1 * np.ones(50, np.float32), 22050)
    st, y, given = _enhance(s, str(tmp_path / "s_out.wav"), 1.0, 0.25)
    assert st["passthrough"].startswith("shorter than one STFT frame") and len(y) == 50
    assert sf.info(str(tmp_path / "s_out.wav")).samplerate == 22050
    odd = str(tmp_path / "odd.wav")   # 44.1 kHz in, 16 kHz model: back to 44.1 kHz, same length
    sf.write(odd, speechlike(3.3, fs=44100, seed=2), 44100)
    st, y, _ = _enhance(odd, str(tmp_path / "odd_out.wav"), 1.0, 0.25)
    assert st["chunks"] == 5 and len(y) == sf.info(odd).frames
    assert sf.info(str(tmp_path / "odd_out.wav")).samplerate == 44100
