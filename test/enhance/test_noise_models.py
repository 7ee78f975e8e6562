"""Noise models of avse.enhance.noise_models and their use by the UDiffSE family."""
import math

import pytest
import torch

from avse.diffusion.sde import OUVE
from avse.dsp.stft import SpectralFrontEnd
from avse.enhance import ENHANCERS
from avse.enhance.likelihood import FixedVarianceNoise, GaussianNMFNoise
from avse.enhance.nmf import NMF
from avse.enhance.noise_models import CompressedDomainNoise, decompress, quantile_psd
from avse.errors import InputError

from test.enhance.test_udiffse import _cn, _prior_score, _speech_plus_noise


def _compress(z, alpha):
    return z.abs().pow(alpha) * torch.sgn(z)


def test_decompress_inverts_compression():
    z = _cn((3, 5, 7), torch.Generator().manual_seed(0))
    for alpha in (0.5, 0.3, 1.0):
        torch.testing.assert_close(decompress(_compress(z, alpha), alpha), z, rtol=1e-5, atol=1e-6)
    assert torch.equal(decompress(torch.zeros(2, 2, dtype=torch.complex64), 0.5).abs(),
                       torch.zeros(2, 2))


def test_quantile_psd_tracks_noise_under_speech_and_ignores_padding():
    g = torch.Generator().manual_seed(1)
    F, T = 16, 400
    P0 = torch.logspace(-3, 0, F)[:, None]                       # true PSD per frequency
    noise = P0 * _cn((F, T), g).abs().pow(2)                    # exponential periodogram
    est = quantile_psd(noise, q=0.5, smooth=1, bias=1 / math.log(2))   # median -> mean
    assert torch.allclose(est, P0, rtol=0.25)
    # Loud "speech" in 60 % of the frames (words of 30 frames, pauses of 20) moves a low
    # quantile only from the noise's 10 % point to about its 30 % point (the smoothing
    # spreads the words by 2 frames).
    speech = torch.zeros(F, T)
    speech[:, (torch.arange(T) % 50) < 30] = 100.0
    low = quantile_psd(noise, q=0.1, smooth=5, bias=1.0)
    ratio = quantile_psd(noise + speech, q=0.1, smooth=5, bias=1.0) / low
    assert torch.all((ratio >= 1) & (ratio < 3))             # the speech (100) is far off
    assert torch.all(low < P0)                                  # a low quantile underestimates
    assert torch.equal(quantile_psd(torch.cat([noise, torch.zeros(F, 37)], 1), 0.1, 5, 1.0), low)
    assert torch.all(quantile_psd(torch.zeros(F, 9)) > 0)       # silence: floored
    with pytest.raises(InputError):
        quantile_psd(noise[None])
    with pytest.raises(InputError):
        quantile_psd(noise, q=1.5)


@pytest.mark.parametrize("snr_db", [-20, -5, 0, 5, 10, 30])
def test_compressed_domain_variance_matches_monte_carlo(snr_db):
    """Var[c(S + N) - c(S)] for N ~ CN(0, P) against the model, from noise- to
    speech-dominated bins (a wrong exponent or constant is off by far more)."""
    alpha, P = 0.5, 2.0
    g = torch.Generator().manual_seed(snr_db + 100)
    S = torch.full((1, 1, 200_000), math.sqrt(P * 10 ** (snr_db / 10)), dtype=torch.complex64)
    N = math.sqrt(P) * _cn(S.shape, g)
    empirical = (_compress(S + N, alpha) - _compress(S, alpha)).abs().pow(2).mean()
    obs = CompressedDomainNoise(alpha, psd=torch.tensor(P))
    assert float(obs.variance()) == pytest.approx(math.gamma(1.5) * P ** 0.5)   # no speech yet
    obs.track(_compress(S[..., :1], alpha))
    assert float(obs.variance()) == pytest.approx(float(empirical), rel=0.1)


def test_compressed_domain_nmf_m_step_fits_linear_residual():
    g = torch.Generator().manual_seed(2)
    F, T = 8, 50
    P = torch.linspace(0.1, 1.0, F)[:, None].expand(F, T)
    S = 2.0 * _cn((2, F, T), g)
    X = _compress(S[0] + P.sqrt() * _cn((F, T), g), 0.5)
    obs = CompressedDomainNoise(0.5, nmf=NMF.random(F, T, 2, generator=g, target_power=5.0))
    first = obs.m_step(X, _compress(S[:1], 0.5))
    for _ in range(30):
        last = obs.m_step(X, _compress(S[:1], 0.5))
    assert last < first and obs.last_divergence == pytest.approx(float(last))
    ratio = obs.linear_psd().mean(1) / P[:, 0]
    assert torch.all((ratio > 0.5) & (ratio < 2.0))
    assert obs.speech_power.shape == (F, T)
    with pytest.raises(InputError):
        CompressedDomainNoise(0.5)
    with pytest.raises(InputError):
        CompressedDomainNoise(0.0, psd=torch.ones(()))


@pytest.mark.parametrize("name", ["udiffse", "udiffse_plus"])
def test_enhancers_build_the_configured_noise_model(name):
    sde, fe = OUVE(), SpectralFrontEnd()
    s2, X = _speech_plus_noise(T=32)
    Xn = (X / X.abs().max()).to(torch.complex64)
    gen = torch.Generator().manual_seed(0)
    kinds = {("nmf", "compressed"): GaussianNMFNoise, ("stationary", "compressed"): FixedVarianceNoise,
             ("nmf", "linear"): CompressedDomainNoise, ("stationary", "linear"): CompressedDomainNoise}
    for (model, domain), cls in kinds.items():
        extra = {"n_em": 2} if name == "udiffse" else {}
        enh = ENHANCERS.build(name, noise=model, noise_conf={"domain": domain}, n_steps=4, **extra)
        assert ("frontend" in enh.needs) == (domain == "linear")
        noise = enh._noise(Xn, gen, fe)
        assert type(noise) is cls
        assert (getattr(noise, "nmf", None) is None) == (model == "stationary")
        out = enh(_prior_score(s2, X, sde), sde, X, frontend=fe)
        assert out.shape == X.shape and torch.isfinite(torch.view_as_real(out)).all()
    # The default stays the paper's (random NMF in the compressed domain, same draws).
    default = ENHANCERS.build(name)._noise(Xn, torch.Generator().manual_seed(5))
    ref = GaussianNMFNoise(NMF.random(*Xn.shape, 4, generator=torch.Generator().manual_seed(5),
                                      target_power=float(Xn.abs().pow(2).mean())))
    assert torch.equal(default.variance(), ref.variance())
    # Quantile init: the NMF starts near the stationary PSD, not at a random shape.
    quant = ENHANCERS.build(name, noise="nmf", noise_conf={"init": "quantile"})._noise(Xn, gen)
    psd = quantile_psd(Xn.abs().pow(2))
    rel = (quant.variance().mean(1, keepdim=True) / psd - 1).abs()
    assert float(rel.median()) < 0.2
    with pytest.raises(InputError, match="frontend"):
        ENHANCERS.build(name, noise_conf={"domain": "linear"})(_prior_score(s2, X, sde), sde, X)
    for bad, msg in ((dict(noise="gmm"), "unknown noise model 'gmm'"),
                     (dict(noise_conf={"domain": "log"}), "domain"),
                     (dict(noise_conf={"init": "zeros"}), "init"),
                     (dict(noise_conf={"clip": 0.5}), "clip"),
                     (dict(noise="stationary", noise_conf={"quantile": 2.0}), "quantile"),
                     (dict(noise="stationary", noise_conf={"bias": 0.0}), "bias"),
                     (dict(noise="stationary", noise_conf={"smooth": 0}), "smooth"),
                     (dict(noise="stationary", noise_conf={"rank": 4}), "bad configuration"),
                     (dict(noise="fixed", noise_conf={"var": 0.0}), "var"),
                     (dict(noise_conf=[4]), "mapping")):
        with pytest.raises(InputError, match=msg):
            ENHANCERS.build(name, **bad)


def test_every_enhancer_takes_every_noise_model():
    """The noise model is one registry shared by the UDiffSE family and the posterior
    enhancers: fixed and zero noise for UDiffSE+, stationary noise for joint restoration."""
    from avse.enhance.likelihood import ZeroNoise
    from avse.enhance.noise_choice import NOISES

    assert list(NOISES) == ["embed_nmf", "fixed", "nmf", "oracle", "stationary", "tracker", "zero"]
    sde = OUVE()
    s2, X = _speech_plus_noise(T=32)
    Xn = (X / X.abs().max()).to(torch.complex64)
    fixed = ENHANCERS.build("udiffse_plus", noise="fixed", noise_conf={"var": 2e-3}, n_steps=4)
    assert type(fixed._noise(Xn, None)) is FixedVarianceNoise
    assert float(fixed._noise(Xn, None).variance()) == pytest.approx(2e-3)
    assert type(ENHANCERS.build("udiffse_plus", noise="zero")._noise(Xn, None)) is ZeroNoise
    out = fixed(_prior_score(s2, X, sde), sde, X)
    assert out.shape == X.shape and torch.isfinite(torch.view_as_real(out)).all()
    joint = ENHANCERS.build("separate", noise="stationary")
    assert not joint.noise_model.updates and ENHANCERS.build("separate", noise="nmf").noise_model.updates


def test_linear_noise_tracks_the_tweedie_estimate_every_likelihood_step():
    """With a speech-dependent variance, every likelihood step of UDiffSE (no M-step
    inside a pass) sees the current Tweedie estimate."""
    sde, fe = OUVE(), SpectralFrontEnd()
    s2, X = _speech_plus_noise(T=32)
    seen = []
    orig = CompressedDomainNoise.track

    def spy(self, S0):
        seen.append(S0.clone())
        orig(self, S0)

    CompressedDomainNoise.track = spy
    try:
        enh = ENHANCERS.build("udiffse", noise="stationary", noise_conf={"domain": "linear"},
                              n_steps=6, n_em=2, lik_period=2, n_samples=2, skip_first=False)
        enh(_prior_score(s2, X, sde), sde, X, frontend=fe)
    finally:
        CompressedDomainNoise.track = orig
    # 3 likelihood steps per pass (period 2 of 6) in each of the 2 passes, plus the
    # end-of-pass M-steps (which also track the finished samples).
    assert len(seen) == 2 * 3 + 2 and all(s.shape == (2, 256, 32) for s in seen)
    assert not torch.equal(seen[0], seen[1])


def test_recipe_robust_nmf_config_builds():
    """mini_av's blind robust NMF (the ablation of the embedding-conditioned noise model)."""
    import os

    from avse.utils.config import load_yaml
    from testutils import REPO

    cfg = load_yaml(os.path.join(REPO, "egs/mini_av/avse1/conf/enhance_udiffse_plus_nmf_robust.yaml"))
    enh = ENHANCERS.build(cfg["method"], **cfg["method_conf"])
    noise = enh.noise_model
    assert (type(noise).__name__, noise.rank, noise.clip, noise.domain) == ("NMFNoise", 24, 3.0, "linear")
    X = torch.randn(16, 20, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    obs = noise.observation(X / X.abs().max(), frontend=type("FE", (), {"alpha": 0.5})())
    assert obs.nmf.clip == 3.0 and obs.nmf.W.shape == (16, 24)
