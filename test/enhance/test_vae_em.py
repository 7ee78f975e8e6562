"""VAE-NMF enhancement by EM (avse.enhance.vae_em)."""
import pytest
import torch

from avse.enhance.base import ENHANCERS
from avse.enhance.vae_em import m_step, neg_log_lik
from avse.errors import InputError
from avse.nets.vae import SpeechVAE

pytestmark = pytest.mark.usefixtures("one_thread")
F, T = 17, 30


def _model(name="vae", **kw):
    torch.manual_seed(0)
    m = SpeechVAE.from_config(name, {"n_freq": F, "latent": 3, "hidden": 16, **kw}).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def _noisy(seed=0):
    g = torch.Generator().manual_seed(seed)
    speech = torch.randn(F, T, dtype=torch.complex64, generator=g) * torch.linspace(3, 0.1, F)[:, None]
    noise = 0.5 * torch.randn(F, T, dtype=torch.complex64, generator=g)
    return speech + noise


def test_m_step_never_increases_the_objective():
    g = torch.Generator().manual_seed(3)
    P = torch.rand(F, T, generator=g) * 5
    Vs = torch.rand(4, F, T, generator=g) + 0.1
    W, H = torch.rand(F, 2, generator=g) + 0.1, torch.rand(2, T, generator=g) + 0.1
    gain = torch.ones(T)
    values = []
    for _ in range(20):
        values.append(float(neg_log_lik(P, gain * Vs + W @ H).sum()))
        W, H, gain = m_step(P, Vs, W, H, gain)
    assert all(b <= a + 1e-3 for a, b in zip(values, values[1:]))
    assert values[-1] < values[0] - 1.0
    assert torch.allclose(W.sum(0), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("method,name", [("vae_mcem", "vae"), ("vae_vem", "vae"), ("vae_vem", "rvae")])
def test_em_runs_and_fits_the_observation(method, name):
    m = _model(name, **({"layers": 2} if name == "rvae" else {}))
    X = _noisy()
    enh = ENHANCERS.build(method, n_iter=15, rank=2, n_chains=3, n_final=2)
    S = enh(m, X, generator=torch.Generator().manual_seed(0))
    assert S.shape == X.shape and S.dtype == X.dtype and bool(torch.isfinite(torch.view_as_real(S)).all())
    assert bool((S.abs() <= X.abs() + 1e-5).all())   # a Wiener filter only attenuates
    st = enh.last_stats
    obj = st["objective"]
    assert len(obj) == 15 and sum(obj[-3:]) < sum(obj[:3])   # the EM objective goes down
    assert st["nfe"] > 15 and st["em_iterations"] == 15
    S2 = enh(m, X, generator=torch.Generator().manual_seed(0))
    assert torch.equal(S, S2)   # deterministic for a seeded generator


def test_av_conditioning_changes_the_estimate():
    lip = {"dim": 8, "front_channels": 4, "front_kernel": [3, 3, 3], "channels": [8], "input_pool": 4,
           "tcn_layers": 1, "size": 32}
    m = _model("vae", lip_encoder="resnet_tcn", lip_encoder_conf=lip, fusion="gated_xattn", spec_fps=62.5)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for part in (m.dec_fusion, m.prior_net):
            for p in part.parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=g))
    lips = torch.randint(0, 255, (1, 12, 32, 32), dtype=torch.uint8, generator=g)
    mask = torch.ones(1, 12, dtype=torch.bool)
    emb = m.encode_cond(lips, mask)
    X = _noisy()
    enh = ENHANCERS.build("vae_mcem", n_iter=5, rank=2, n_chains=2, n_final=2)

    def run(rel):
        return enh(m, X, generator=torch.Generator().manual_seed(0),
                   cond={"cond": emb, "cond_mask": mask, "cond_rel": rel})

    on, off = run(torch.ones(1, 12)), run(torch.zeros(1, 12))
    assert not torch.allclose(on, off)
    # reliability 0 everywhere: exactly the audio-only computation
    assert torch.allclose(off, enh(m, X, generator=torch.Generator().manual_seed(0),
                                   cond={"cond": emb, "cond_mask": torch.zeros_like(mask),
                                         "cond_rel": torch.zeros(1, 12)}), atol=1e-6)


def test_silence_and_bad_input():
    m = _model()
    enh = ENHANCERS.build("vae_vem", n_iter=2)
    Z = torch.zeros(F, T, dtype=torch.complex64)
    assert torch.equal(enh(m, Z), Z) and enh.last_stats["passthrough"] == "silent"
    with pytest.raises(InputError, match="bins"):
        enh(m, torch.ones(F + 1, T, dtype=torch.complex64))
    bad = _noisy()
    bad[0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        enh(m, bad)
    with pytest.raises(InputError, match="use vae_vem"):
        ENHANCERS.build("vae_mcem", n_iter=2)(_model("rvae", layers=1), _noisy())
    with pytest.raises(InputError, match="n_iter >= 1"):
        ENHANCERS.build("vae_mcem", n_iter=0)
    with pytest.raises(InputError, match="n_keep <= n_mh"):
        ENHANCERS.build("vae_mcem", n_mh=4, n_keep=5)


def test_mcem_keeps_the_last_samples_of_each_e_step():
    m = _model()
    enh = ENHANCERS.build("vae_mcem", n_iter=3, rank=2, n_chains=2, burn_in=1, n_mh=4, n_keep=1, n_final=1)
    one = enh(m, _noisy(), generator=torch.Generator().manual_seed(0))
    all4 = ENHANCERS.build("vae_mcem", n_iter=3, rank=2, n_chains=2, burn_in=1, n_mh=4, n_final=1)
    assert not torch.allclose(one, all4(m, _noisy(), generator=torch.Generator().manual_seed(0)))
    # decoder calls: the encoder's start, the chains' first state, burn-in, 4 per iteration, final
    assert enh.last_stats["nfe"] == 1 + 1 + 1 + 3 * 4 + 1
