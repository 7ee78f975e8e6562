"""LipVariance: the lip-conditioned Gaussian part of an AV prior (shapes, missing video,
gating, interpolation), and its place in ScoreModel's preconditioning."""
import math

import pytest
import torch

from avse.diffusion.sde import SDES
from avse.errors import InputError
from avse.nets.lip_variance import LipVariance
from avse.nets.score_model import ScoreModel

pytestmark = pytest.mark.usefixtures("one_thread")

LIP = {"dim": 16, "front_channels": 4, "front_kernel": [3, 3, 3], "channels": [8], "input_pool": 4,
       "tcn_layers": 1}


def _model(**extra):
    conf = {"preset": "tiny", "nf": 8, "ch_mult": [1, 2, 2], "fusion": "gated_xattn",
            "lip_encoder": "resnet_tcn", "lip_encoder_conf": LIP, **extra}
    torch.manual_seed(0)
    return ScoreModel.from_config("ncsnpp", conf, SDES.build("ouve"))


def _randomise(head: LipVariance, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head.out.weight.copy_(torch.randn(head.out.weight.shape, generator=g))
        head.base.copy_(torch.randn(head.base.shape, generator=g) - 2)


def test_starts_at_sigma_data_and_missing_video_is_the_base_profile():
    head = LipVariance(16, sigma_data=0.1, bands=8, hidden=12)
    cond = torch.randn(2, 10, 16)
    out = head(cond, None, None, n_freq=40, n_frames=50)
    assert out.shape == (2, 40, 50)
    torch.testing.assert_close(out, torch.full_like(out, math.log(0.1)))
    _randomise(head)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1] = False
    out = head(cond, mask, None, 40, 50)
    base = head(None, None, None, 40, 50, batch=1)[0]
    torch.testing.assert_close(out[1], base)  # no video: the unconditional envelope
    assert (out[0] - base).abs().max() > 0.1  # video: the lips move it
    # frames past the end of the video get the base profile too (10 frames = 0.4 s = 50 STFT frames)
    long = head(cond, mask, None, 40, 70)
    torch.testing.assert_close(long[0, :, 60:], base[:, :10])


def test_envelope_follows_the_lips_in_time_and_bands_interpolate_over_frequency():
    head = LipVariance(4, bands=4, hidden=8, context=0)
    _randomise(head)
    cond = torch.zeros(1, 6, 4)
    cond[0, 3] = torch.tensor([3.0, -1.0, 2.0, 0.0])  # one video frame differs: 120-160 ms -> STFT frames 15-19 (125 frames/s)
    out = head(cond, None, None, n_freq=16, n_frames=30)
    base = head(None, None, None, 16, 30)[0]
    moved = (out[0] - head(torch.zeros(1, 6, 4), None, None, 16, 30)[0]).abs().amax(0)
    assert moved[17] > 0 and moved[:10].max() == 0 and moved[25:].max() == 0
    # bands -> bins: linear interpolation between band centres (bin i sits at band
    # position (i + 0.5) * 4 / 16 - 0.5), edges held
    prof = head.base.detach()
    assert base[0, 0] == prof[0] and base[-1, 0] == prof[-1]
    torch.testing.assert_close(base[2, 0], 0.875 * prof[0] + 0.125 * prof[1])
    torch.testing.assert_close(base[6, 0], 0.875 * prof[1] + 0.125 * prof[2])
    torch.testing.assert_close(base[9, 0], 0.125 * prof[1] + 0.875 * prof[2])


def test_gating_by_reliability():
    head = LipVariance(8, bands=4, hidden=8, gated=True)
    _randomise(head)
    cond = torch.randn(1, 5, 8)
    base = head(None, None, None, 8, 25)
    torch.testing.assert_close(head(cond, None, torch.zeros(1, 5), 8, 25), base)
    full = head(cond, None, torch.ones(1, 5), 8, 25)
    half = head(cond, None, torch.full((1, 5), 0.5), 8, 25)
    torch.testing.assert_close(half - base, 0.5 * (full - base))
    ungated = LipVariance(8, bands=4, hidden=8, gated=False)
    ungated.load_state_dict(head.state_dict())
    torch.testing.assert_close(ungated(cond, None, torch.zeros(1, 5), 8, 25), full)


def test_bad_options():
    with pytest.raises(InputError, match="bands"):
        LipVariance(8, bands=1)
    with pytest.raises(InputError, match="sigma_data"):
        LipVariance(8, sigma_data=0)
    with pytest.raises(InputError, match="lip_variance needs lip_encoder"):
        ScoreModel.from_config("ncsnpp", {"preset": "tiny", "lip_variance": {}}, SDES.build("ouve"))
    with pytest.raises(InputError, match="precond"):
        _model(lip_variance={}, precond="none")
    with pytest.raises(InputError, match="mapping"):
        _model(lip_variance=3)


def test_score_model_uses_the_per_bin_variance_in_its_gaussian_part():
    m = _model(lip_variance={"bands": 8})
    assert m.config["model_conf"]["lip_variance"] == {"bands": 8, "hidden": 128, "context": 1, "gated": True,
                                                      "cond_fps": 25.0, "spec_fps": 125.0, "residual": "lip"}
    plain = _model()
    plain.load_state_dict(m.state_dict(), strict=False)
    x = 0.1 * torch.randn(2, 64, 32, dtype=torch.complex64)
    t = torch.tensor([0.3, 0.7])
    lips = torch.randint(0, 255, (2, 7, 88, 88), dtype=torch.uint8)
    mask = torch.ones(2, 7, dtype=torch.bool)
    kw = {"cond": lips, "cond_mask": mask, "cond_rel": torch.ones(2, 7)}
    with torch.no_grad():
        torch.testing.assert_close(m(x, t, **kw), plain(x, t, **kw))  # untrained head = constant sigma_data
        _randomise(m.lip_variance)
        with torch.no_grad():
            for p in m.backbone.parameters():  # backbone output 0: the score is the Gaussian's alone
                p.zero_()
        emb = m.encode_cond(lips, mask)
        sd = m.lip_variance(emb, mask, kw["cond_rel"], 64, 32, 2).exp()
        mu, sigma = (v.reshape(-1, 1, 1) for v in m.sde.marginal(t))
        want = -(sigma / (mu ** 2 * sd ** 2 + sigma ** 2)) * x / sigma  # Wiener: score of N(0, mu^2 sd^2 + sigma^2)
        torch.testing.assert_close(m(x, t, **kw), want.to(torch.complex64), rtol=1e-4, atol=1e-4)
        # shuffled lips change the Gaussian part
        other = dict(kw, cond=lips.roll(1, 0))
        assert (m(x, t, **other) - m(x, t, **kw)).abs().max() > 1e-3


def test_freeze_audio_keeps_the_variance_head_trainable(tmp_path):
    from avse.train.trainer import Trainer  # noqa: F401  (the grouping is checked on the method)

    m = _model(lip_variance={})

    class T:  # the bound method needs only .model
        model = m
    Trainer._freeze_audio(T)
    trainable = {n.split(".")[0] for n, p in m.named_parameters() if p.requires_grad}
    assert trainable == {"cond_encoder", "lip_variance", "backbone"}
    assert all(("fusions" in n) == p.requires_grad for n, p in m.backbone.named_parameters())


def test_constant_residual_scale_keeps_the_backbone_term_of_the_audio_only_model():
    """residual: constant: the lips change only the Gaussian (Wiener) term; the backbone's
    residual enters with the audio-only scale mu sigma_data / sqrt(v0)."""
    m = _model(lip_variance={"bands": 8, "residual": "constant"})
    assert m.config["model_conf"]["lip_variance"]["residual"] == "constant"
    plain = _model()
    _randomise(m.lip_variance)
    plain.load_state_dict(m.state_dict(), strict=False)
    x = 0.1 * torch.randn(2, 64, 32, dtype=torch.complex64)
    t = torch.tensor([0.2, 0.6])
    lips = torch.randint(0, 255, (2, 7, 88, 88), dtype=torch.uint8)
    kw = {"cond": lips, "cond_mask": torch.ones(2, 7, dtype=torch.bool), "cond_rel": torch.ones(2, 7)}
    with torch.no_grad():
        emb = m.encode_cond(lips, kw["cond_mask"])
        sd = m.lip_variance(emb, kw["cond_mask"], kw["cond_rel"], 64, 32, 2).exp()
        mu, sigma = (v.reshape(-1, 1, 1) for v in m.sde.marginal(t))
        v, v0 = mu ** 2 * sd ** 2 + sigma ** 2, mu ** 2 * 0.1 ** 2 + sigma ** 2
        resid = m.raw(x, t, **kw) + (sigma / v) * x
        torch.testing.assert_close(resid, plain.raw(x, t, **kw) + (sigma / v0) * x, rtol=1e-4, atol=1e-5)
        assert resid.abs().max() > 1e-3  # the backbone term is there
        lip = _model(lip_variance={"bands": 8})
        lip.load_state_dict(m.state_dict())
        assert (lip.raw(x, t, **kw) - m.raw(x, t, **kw)).abs().max() > 1e-4  # "lip" scales it per bin
    with pytest.raises(InputError, match="residual"):
        LipVariance(8, residual="other")


def test_temper_scales_the_lip_part_at_inference():
    head = LipVariance(16, bands=8, hidden=12)
    _randomise(head)
    cond = torch.randn(1, 10, 16)
    base = head(None, None, None, 40, 50)
    full = head(cond, None, None, 40, 50)
    head.set_temper(0.5)
    torch.testing.assert_close(head(cond, None, None, 40, 50), base + 0.5 * (full - base))
    head.set_temper(0.0)
    torch.testing.assert_close(head(cond, None, None, 40, 50), base)
    assert "temper" not in head.config  # an inference knob, not part of the stored model
    for bad in (-0.1, 2.5):
        with pytest.raises(InputError, match="temper"):
            head.set_temper(bad)


def test_conditioner_applies_the_temper_and_refuses_models_without_the_head():
    from avse.nets.lip_cond import LipConditioner

    m = _model(lip_variance={"bands": 8, "hidden": 12})
    LipConditioner(m, {}, torch.device("cpu"), variance_temper=0.25)
    assert m.lip_variance.temper == 0.25
    with pytest.raises(InputError, match="no lip_variance head"):
        LipConditioner(_model(), {}, torch.device("cpu"), variance_temper=0.5)


def test_envelope_likelihood_trains_the_head_in_training_only():
    """``envelope_nll``: the DSM loss plus the clean crop's Gaussian NLL under the lip
    envelope, in training mode only (validation stays the plain DSM loss); it reaches the
    lip-dependent layer of the head directly."""
    from avse.train.objectives import DSMObjective

    cfg = {"sde": "ouve", "model": "ncsnpp", "lip_encoder": "resnet_tcn",
           "model_conf": {"lip_variance": {"bands": 8}}}
    with pytest.raises(InputError, match="needs an audio-visual prior"):
        DSMObjective({"sde": "ouve", "model": "ncsnpp", "envelope_nll": 0.5}, 128)
    plain, aux = DSMObjective(cfg, 128), DSMObjective({**cfg, "envelope_nll": 0.5}, 128)
    m = _model(lip_variance={"bands": 8})
    _randomise(m.lip_variance)
    g = torch.Generator().manual_seed(0)
    x0 = 0.1 * torch.randn(2, 64, 16, dtype=torch.complex64, generator=g)
    draws = plain.draws(g, tuple(x0.shape))
    cond = {"cond": torch.randint(0, 255, (2, 4, 88, 88), dtype=torch.uint8, generator=g),
            "cond_mask": torch.ones(2, 4, dtype=torch.bool), "cond_rel": torch.ones(2, 4)}
    m.train()
    l_plain, l_aux = plain.loss(m, x0, draws, cond), aux.loss(m, x0, draws, cond)
    assert float(l_aux.detach()) != pytest.approx(float(l_plain.detach()))
    (l_aux - l_plain).backward()   # the likelihood term alone
    assert float(m.lip_variance.out.weight.grad.abs().sum()) > 0
    m.eval()
    with torch.no_grad():
        assert float(aux.loss(m, x0, draws, cond)) == pytest.approx(float(plain.loss(m, x0, draws, cond)))
