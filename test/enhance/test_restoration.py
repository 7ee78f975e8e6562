"""The restoration enhancers (dps_informed, buddy, separate, joint) end to end on a toy:
a Gaussian 'prior' with the clean signal's per-bin power as variance (no network)."""
import math

import numpy as np
import pytest
import torch

from avse.diffusion.sampler import gaussian_score
from avse.diffusion.sde import OUVE
from avse.dsp.stft import SpectralFrontEnd
from avse.enhance import ENHANCERS
from avse.enhance.operators import TimeConvolution
from avse.enhance.posterior import align_sources
from avse.errors import InputError
from avse.metrics.sisdr import si_sdr

FS = 16000


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


@pytest.fixture(scope="module")
def toy():
    """0.5 s speech-like noise through a synthetic exponential RIR (T60 0.5 s, DRR ~ -1.6 dB)."""
    g = torch.Generator().manual_seed(0)
    fe, N, t60 = SpectralFrontEnd(n_fft=126, hop=32), 8000, 0.5
    env = torch.repeat_interleave(torch.rand(N // 800 + 1, generator=g) ** 2, 800)[:N]
    x = torch.randn(N, generator=g) * env
    n = torch.arange(1, int(1.2 * t60 * FS), dtype=torch.float64)
    tail = 0.05 * torch.randn(n.numel(), generator=g, dtype=torch.float64) \
        * torch.exp(-math.log(1000.0) * n / (FS * t60))
    h = torch.cat([torch.ones(1, dtype=torch.float64), tail]).float()
    y = TimeConvolution(h).forward(x)
    X = fe(y)
    var = (fe(x) / float(X.abs().max())).abs().pow(2) + 1e-4   # in the enhancer's units
    return dict(fe=fe, x=x, y=y, h=h, X=X, t60=t60, N=N, var=var)


def _sisdr(ref, est):
    return si_sdr(ref.numpy().astype(np.float64), est.numpy().astype(np.float64), FS)


def _run(name, toy, conf, **aux):
    sde = OUVE()
    enh = ENHANCERS.build(name, **conf)
    S = enh(gaussian_score(torch.zeros(()), toy["var"], sde), sde, toy["X"],
            generator=torch.Generator().manual_seed(1), frontend=toy["fe"], **aux)
    return enh, S


def test_informed_dereverberation_beats_input_and_identity_model(toy):
    base = _sisdr(toy["x"], toy["y"])
    enh, S = _run("dps_informed", toy, dict(n_steps=30, n_corrector=0), rir1=toy["h"].numpy()[None])
    gain = _sisdr(toy["x"], toy["fe"].inverse(S, length=toy["N"])) - base
    _, S_id = _run("udiffse_plus", toy, dict(n_steps=30, n_corrector=0, n_samples=1))
    gain_id = _sisdr(toy["x"], toy["fe"].inverse(S_id, length=toy["N"])) - base
    assert S.shape == toy["X"].shape and enh.last_stats["lik_steps"] == 30
    assert gain > 6.0 and gain > gain_id + 5.0, (gain, gain_id)     # measured 11.3 vs 0.9 dB
    with pytest.raises(InputError, match="rir1.scp"):
        _run("dps_informed", toy, dict(n_steps=3))


def test_blind_dereverberation_estimates_t60(toy):
    base = _sisdr(toy["x"], toy["y"])
    enh, S = _run("buddy", toy, dict(n_steps=30, n_corrector=0, room_updates=5, zeta=0.01), fs=FS)
    gain = _sisdr(toy["x"], toy["fe"].inverse(S, length=toy["N"])) - base
    t60 = enh.last_stats["t60"]
    assert gain > 2.0, gain                                          # measured 4.0 dB
    assert abs(t60 - toy["t60"]) / toy["t60"] < 0.25, t60             # measured 0.48 s
    assert len(enh.last_stats["t60_bands"]) == 26
    with pytest.raises(InputError, match="fs"):
        _run("buddy", toy, dict(n_steps=3))


def test_separation_and_joint_return_sources(toy):
    fe = toy["fe"]
    enh, S = _run("separate", toy, dict(n_steps=10, n_corrector=0, guidance=["dps", "projection"],
                                        proj_start=0.5))
    assert S.shape == (2, *toy["X"].shape) and torch.isfinite(torch.view_as_real(S)).all()
    assert enh.last_stats["n_sources"] == 2 and enh.last_stats["guidance"] == ["dps", "projection"]
    # the final projection: the sources add up to the mixture (linear STFTs)
    torch.testing.assert_close(fe.decompress(S).sum(0), fe.decompress(toy["X"]), atol=1e-3, rtol=1e-3)
    assert float((S[0] - S[1]).abs().mean()) > 1e-3
    enh, S = _run("joint", toy, dict(n_steps=6, n_corrector=0, room_updates=2, noise="nmf"), fs=FS)
    assert S.shape == (2, *toy["X"].shape) and 0.05 <= enh.last_stats["t60"] <= 2.0
    assert enh.last_stats["m_steps"] == 6
    enh, S = _run("joint", toy, dict(n_steps=3, n_corrector=0, room_updates=2, room_loss="ml"), fs=FS)
    assert S.shape == (2, *toy["X"].shape) and 0.05 <= enh.last_stats["t60"] <= 2.0
    with pytest.raises(InputError, match="room_loss"):
        ENHANCERS.build("buddy", room_loss="l1")
    silent = ENHANCERS.build("separate")(lambda x, t: x, OUVE(), torch.zeros(4, 5, dtype=torch.complex64),
                                         frontend=fe)
    assert silent.shape == (2, 4, 5) and not silent.abs().any()
    with pytest.raises(InputError, match="guidance"):
        ENHANCERS.build("separate", guidance="bogus")
    with pytest.raises(InputError, match="udiffse"):
        _run("separate", toy, dict(n_steps=3, guidance="udiffse"))     # stft domain: nonlinear
    _, S = _run("separate", toy, dict(n_steps=3, guidance="udiffse", domain="compressed"))
    assert S.shape == (2, *toy["X"].shape)


def test_separation_with_per_source_oracle_priors_recovers_the_sources():
    """With a Gaussian prior of each source's own power per bin (source k = batch item k),
    the mixture likelihood and projection separate two coloured, differently gated noises:
    the sampler and guidance are sound; with one shared prior the problem is the prior."""
    fe, N = SpectralFrontEnd(n_fft=126, hop=32), 8000

    def source(seed):
        g = torch.Generator().manual_seed(seed)
        env = torch.repeat_interleave(torch.rand(N // 400 + 1, generator=g) ** 3, 400)[:N]
        k = torch.randn(9, generator=g)
        x = torch.randn(N, generator=g) * env
        return torch.nn.functional.conv1d(x[None, None], k[None, None], padding=4)[0, 0]

    s1, s2 = source(1), source(2)
    X = fe(s1 + s2)
    scale = float(X.abs().max())
    var = torch.stack([(fe(s) / scale).abs().pow(2) + 1e-5 for s in (s1, s2)])   # (K, F, T)
    sde = OUVE()
    enh = ENHANCERS.build("separate", n_steps=30, guidance=["dps", "projection"], proj_start=0.5)
    S = enh(gaussian_score(torch.zeros(()), var, sde), sde, X,
            generator=torch.Generator().manual_seed(0), frontend=fe)
    est = [fe.inverse(S[k], length=N) for k in range(2)]
    mix = (_sisdr(s1, s1 + s2) + _sisdr(s2, s1 + s2)) / 2
    pit = max(_sisdr(s1, est[0]) + _sisdr(s2, est[1]), _sisdr(s1, est[1]) + _sisdr(s2, est[0])) / 2
    assert pit - mix > 5.0, (pit, mix)                                  # measured 8.4 dB


class TalkerScores:
    """A score bound to talkers, as an audio-visual prior with per-source lips gives
    (:class:`avse.nets.lip_cond.ConditionedScore`): row ``j * K + k`` is talker ``k``'s, here
    the Gaussian score of talker ``k``'s own per-bin power ``var[k]``."""

    def __init__(self, var, sde):
        self.var, self.sde, self.n_sources = var, sde, var.shape[0]

    def __call__(self, x, t):
        var = self.var.repeat(x.shape[0] // self.n_sources, 1, 1)
        return gaussian_score(torch.zeros(()), var, self.sde)(x, t)


def test_sources_bound_to_talkers_keep_their_order(monkeypatch):
    """With a score of K talkers, source k is talker k in every sample: the samples are
    averaged as they are (no alignment by correlation), and output k is talker k's."""
    import avse.enhance.posterior as posterior

    fe, N = SpectralFrontEnd(n_fft=126, hop=32), 4000
    g = torch.Generator().manual_seed(0)
    env = [torch.repeat_interleave(torch.rand(N // 400 + 1, generator=g) ** 3, 400)[:N] for _ in range(2)]
    s1, s2 = (torch.randn(N, generator=g) * e for e in env)
    X = fe(s1 + s2)
    var = torch.stack([(fe(s) / float(X.abs().max())).abs().pow(2) + 1e-5 for s in (s1, s2)])
    sde = OUVE()
    # an alignment would reverse the sources of every sample: bound sources never get one
    monkeypatch.setattr(posterior, "align_sources", lambda S: S.flip(1))
    enh = ENHANCERS.build("separate", n_steps=10, n_corrector=0, n_samples=2, guidance=["dps", "projection"],
                          proj_start=0.5)
    S = enh(TalkerScores(var, sde), sde, X, generator=torch.Generator().manual_seed(0), frontend=fe)
    assert enh.sources_bound
    est = [fe.inverse(S[k], length=N) for k in range(2)]
    mix = (_sisdr(s1, s1 + s2) + _sisdr(s2, s1 + s2)) / 2
    fixed = (_sisdr(s1, est[0]) + _sisdr(s2, est[1])) / 2
    assert fixed - mix > 3.0, (fixed, mix)
    # a shared (unbound) score is aligned as before
    enh(gaussian_score(torch.zeros(()), var.mean(0), sde), sde, X, generator=torch.Generator().manual_seed(0),
        frontend=fe)
    assert not enh.sources_bound
    # a score of another number of talkers than the method samples is refused
    with pytest.raises(InputError, match="conditions 3 sources.*samples 2"):
        enh(TalkerScores(var[[0, 1, 0]], sde), sde, X, frontend=fe)


def test_align_sources_undoes_permutations():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, 5, dtype=torch.complex64, generator=g)
    S = torch.stack([a, a[[2, 0, 1]] * 1.1, a[[1, 2, 0]] * 0.9])
    out = align_sources(S)
    for j in range(3):
        torch.testing.assert_close(out[j] / out[j].abs().sum() * a.abs().sum(), a, rtol=1e-4, atol=1e-4)


class LipTalkerScores(TalkerScores):
    """:class:`TalkerScores` whose prior also states each talker's speech envelope, as a
    lip-variance prior with per-source lips does (``envelope``: compressed-domain standard
    deviation (K, F, T)); ``blur``: the envelope averaged over that many frames (a lip
    prediction is smoother than the truth), and the talker's Gaussian score has that
    envelope as its variance: a prior that knows what the lips say and no more."""

    def __init__(self, var, sde, blur=1):
        sd = var.sqrt()
        self.env = torch.nn.functional.avg_pool1d(sd, blur, 1, blur // 2, count_include_pad=False)[..., :sd.shape[-1]]
        super().__init__(self.env ** 2, sde)   # the prior knows no more than the envelope

    def envelope(self, n_freq, n_frames):
        assert (n_freq, n_frames) == tuple(self.env.shape[1:])
        return self.env


def _two_talkers(N=8000):
    fe = SpectralFrontEnd(n_fft=126, hop=32)
    g = torch.Generator().manual_seed(4)
    env = [torch.repeat_interleave(torch.rand(N // 400 + 1, generator=g) ** 3, 400)[:N] for _ in range(2)]
    s1, s2 = (torch.randn(N, generator=g) * e for e in env)
    X = fe(s1 + s2)
    var = torch.stack([(fe(s) / float(X.abs().max())).abs().pow(2) + 1e-5 for s in (s1, s2)])
    return fe, s1, s2, X, var


def test_lips_start_is_each_talkers_wiener_share_of_the_mixture():
    """init 'lips': source k starts from c(P_k / sum P_j d(X)) with P_k = envelope_k^(2 / alpha);
    the shares add up to the mixture in the linear domain."""
    from avse.enhance.posterior import lip_wiener_start

    fe, s1, s2, X, var = _two_talkers()
    sde = OUVE()
    score = LipTalkerScores(var, sde, blur=5)
    S0 = lip_wiener_start(X, score, fe, 2, "separate")
    P = score.env.double() ** (2 / fe.alpha)
    want = fe.compress((P / P.sum(0)).float() * fe.decompress(X)[None])
    torch.testing.assert_close(S0, want)
    torch.testing.assert_close(fe.decompress(S0).sum(0), fe.decompress(X), rtol=1e-4, atol=1e-5)
    with pytest.raises(InputError, match="lip-predicted speech envelope"):
        lip_wiener_start(X, TalkerScores(var, sde), fe, 2, "separate")
    with pytest.raises(InputError, match="lips of 2 talkers for 3 sources"):
        lip_wiener_start(X, score, fe, 3, "separate")
    with pytest.raises(InputError, match="init in"):
        ENHANCERS.build("udiffse_plus", init="lips")


def test_separation_from_the_lips_start_beats_the_prior_start_at_equal_steps():
    """With talker-bound Gaussian scores of smoothed envelopes (a prior that knows what the
    lips can tell), a short pass from t_start = 0.3 and the lips start separates better than
    the same number of steps from pure noise and stays near its start, the Wiener filter
    (the posterior mean of this prior); the start time is validated."""
    fe, s1, s2, X, var = _two_talkers()
    sde = OUVE()
    score = LipTalkerScores(var, sde, blur=9)
    mix = (_sisdr(s1, s1 + s2) + _sisdr(s2, s1 + s2)) / 2

    def sep(**conf):
        enh = ENHANCERS.build("separate", n_steps=6, n_corrector=0, n_samples=2,
                              guidance=["dps", "projection"], proj_split="power", **conf)
        S = enh(score, sde, X, generator=torch.Generator().manual_seed(0), frontend=fe)
        est = [fe.inverse(S[k], length=len(s1)) for k in range(2)]
        return (_sisdr(s1, est[0]) + _sisdr(s2, est[1])) / 2 - mix, enh

    from avse.enhance.posterior import lip_wiener_start
    S0 = lip_wiener_start(X / float(X.abs().max()), score, fe, 2, "separate")
    start = (_sisdr(s1, fe.inverse(S0[0], length=len(s1))) + _sisdr(s2, fe.inverse(S0[1], length=len(s1)))) / 2 - mix
    warm, enh = sep(init="lips", t_start=0.3)
    cold, _ = sep(init="prior")
    assert enh.last_stats["nfe"] == 6
    assert warm > cold + 0.5 and abs(warm - start) < 1.0, (warm, cold, start)   # 4.56, 3.64, 4.72
    with pytest.raises(ValueError, match="t_eps < start <= T"):
        sep(init="lips", t_start=0.02)


@pytest.mark.parametrize("init", ["noisy", "scaled", "prior"])
def test_a_start_below_T_is_the_estimate_noised_to_t_start(init):
    """t_start < T (SDEdit): S = mu(t_start) X + sigma(t_start) z (zero mean for 'prior');
    at T the starts are the usual ones (noisy: X + sigma(T) z, scaled: mu(T) X + sigma(T) z)."""
    sde = OUVE()
    X = torch.randn(5, 7, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    for t0 in (None, 0.4):
        enh = ENHANCERS.build("udiffse_plus", init=init, t_start=t0, n_samples=3)
        S = enh._start(X, sde, torch.Generator().manual_seed(5))
        z = torch.randn(3, 5, 7, dtype=torch.complex64, generator=torch.Generator().manual_seed(5))
        mu, sigma = (float(v) for v in sde.marginal(torch.tensor(1.0 if t0 is None else t0, dtype=torch.float64)))
        mean = {"noisy": X if t0 is None else mu * X, "scaled": mu * X, "prior": 0 * X}[init]
        torch.testing.assert_close(S, mean + sigma * z)
    with pytest.raises(InputError, match="t_start > 0"):
        ENHANCERS.build("udiffse_plus", t_start=0.0)
