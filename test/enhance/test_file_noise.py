"""avse.enhance.file_noise: the streamed quantile and the whole-file PSD."""
import pytest
import torch

from avse.dsp.stft import SpectralFrontEnd
from avse.enhance.file_noise import FilePSD, QuantileHistogram
from avse.enhance.noise_choice import build_noise
from avse.enhance.noise_models import quantile_psd
from avse.errors import InputError
from testutils import speechlike


def test_histogram_quantiles_are_within_one_bin():
    g = torch.Generator().manual_seed(0)
    v = torch.exp(4 * torch.randn(3, 5000, generator=g, dtype=torch.float64))
    h = QuantileHistogram(3)
    for part in v.split(777, dim=1):
        h.add(part)
    assert h.n == 5000
    for q in (0.0, 0.1, 0.5, 0.93):
        ratio = h.quantile(q) / torch.quantile(v, q, dim=1)
        assert torch.all((ratio - 1).abs() < 0.024), (q, ratio)   # one bin: 10^(1/100)
    with pytest.raises(InputError, match="no values"):
        QuantileHistogram(2).quantile(0.5)


@pytest.mark.parametrize("domain", ["compressed", "linear"])
def test_whole_file_psd_equals_the_quantile_psd(domain):
    fe = SpectralFrontEnd(n_fft=126, hop=32)
    model = build_noise("stationary", {"domain": domain, "bias": 2.0})
    x = torch.from_numpy(speechlike(2.0, seed=3)) + 0.02 * torch.randn(32000, generator=torch.Generator().manual_seed(1))
    X = fe(x)
    est = FilePSD(model, fe)
    est.add(X, slice(None))
    want = quantile_psd(model.power(X, fe), **model.psd_conf)
    assert est.psd().shape == (fe.n_freq, 1)
    assert torch.all((est.psd() / want - 1).abs() < 0.025)
    with pytest.raises(InputError, match="no whole-file PSD"):
        FilePSD(build_noise("nmf", {}), fe)
    assert FilePSD(build_noise("nmf", {"init": "quantile"}), fe).psd() is None   # nothing added yet
