"""Per-source lip conditioning (avse.nets.lip_cond): row j*K+k of a K-source batch gets talker k's
lips (lip.scp, lip2.scp), classifier-free guidance per source, and the errors on missing tables."""
import os

import numpy as np
import pytest
import torch

from avse.diffusion.sde import SDES
from avse.errors import InputError
from avse.lips.tables import lip_tables
from avse.nets.lip_cond import LipConditioner, make_cond_score_fn, stack_sources
from avse.nets.score_model import ScoreModel

pytestmark = pytest.mark.usefixtures("one_thread")

LIP = {"dim": 16, "front_channels": 4, "front_kernel": [3, 3, 3], "channels": [8], "input_pool": 4,
       "tcn_layers": 1}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def net():
    """A tiny AV prior whose lips matter: the fusion outputs and the lip-variance head (zero at
    initialisation) random."""
    conf = {"preset": "tiny", "nf": 8, "ch_mult": [1, 2, 2], "fusion": "gated_xattn",
            "lip_encoder": "resnet_tcn", "lip_encoder_conf": LIP, "lip_variance": {"bands": 8, "hidden": 16}}
    torch.manual_seed(0)
    m = ScoreModel.from_config("ncsnpp", conf, SDES.build("ouve")).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.startswith("backbone.fusions.") and (".out_add." in name or ".out_mul." in name):
                p.copy_(0.3 * torch.randn_like(p))
        m.lip_variance.out.weight.copy_(torch.randn_like(m.lip_variance.out.weight))
    return m


def _lips(seed: int, n: int) -> np.ndarray:
    """A mouth opening and closing at a talker's own pace (T, 88, 88) uint8."""
    rng = np.random.default_rng(seed)
    lips = np.full((n, 88, 88), 110, np.uint8)
    lips[:, 30:60, 20:68] = rng.integers(20, 240, n)[:, None, None]
    return lips


A, B = _lips(1, 7), _lips(2, 7)


def _write(d, *talkers, conf=True):
    """lip.scp (talker 1), lip2.scp .. of one utterance 'u0', with lip_conf*.scp."""
    os.makedirs(d, exist_ok=True)
    for k, lips in enumerate(talkers, 1):
        sfx = "" if k == 1 else str(k)
        np.save(os.path.join(d, f"lip{sfx}.npy"), lips)
        np.save(os.path.join(d, f"conf{sfx}.npy"), np.ones(len(lips), np.float32))
        with open(os.path.join(d, f"lip{sfx}.scp"), "w") as f:
            f.write(f"u0 {d}/lip{sfx}.npy\n")
        if conf or k == 1:
            with open(os.path.join(d, f"lip_conf{sfx}.scp"), "w") as f:
                f.write(f"u0 {d}/conf{sfx}.npy\n")
    return str(d)


def _cond(net, d, n_sources=2, **kw):
    return LipConditioner.for_model(net, d, None, "conf", None, CPU, False, "none", 0, n_sources=n_sources, **kw)


def _batch(b=2, K=2):
    """b * K identical rows: only the lips tell the rows apart."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 64, 32, dtype=torch.complex64, generator=g)
    return x.expand(b * K, -1, -1).clone(), torch.full((b * K,), 0.4)


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * float(b.abs().max()))


def _differ(a, b):
    """Far beyond the tolerance of :func:`_close`."""
    return float((a - b).abs().max()) > 1e-3 * float(b.abs().max())


def test_rows_get_the_lips_of_their_source_and_swapping_the_tables_swaps_them(net, tmp_path):
    ab = _write(tmp_path / "ab", A, B)
    lc = _cond(net, ab)
    assert lc.n_sources == 2
    x, t = _batch()
    with torch.no_grad():
        fn = lc.score_fn("u0")
        s = fn(x, t)
    assert fn.n_sources == 2 and s.shape == x.shape and s.dtype == torch.complex64
    _close(s[2], s[0])          # rows j*K + 0: talker 1
    _close(s[3], s[1])          # rows j*K + 1: talker 2
    assert _differ(s[0], s[1])  # identical inputs, different lips
    # each row is the one-source score of its talker
    with torch.no_grad():
        one = LipConditioner(net, lip_tables(ab, "conf"), CPU).score_fn("u0")
        assert one.n_sources == 1
        _close(s[0], one(x[:1], t[:1])[0])
        _close(s[1], make_cond_score_fn(net, CPU, False, lc.conditioning("u0", source=2))(x[:1], t[:1])[0])
    # the same lips in swapped tables give the rows swapped
    with torch.no_grad():
        s_sw = _cond(net, _write(tmp_path / "ba", B, A)).score_fn("u0")(x, t)
    _close(s_sw[0], s[1])
    _close(s_sw[1], s[0])
    with pytest.raises(InputError, match="multiple of 2"):
        fn(x[:3], t[:3])
    with pytest.raises(InputError, match="talkers 1..2"):
        lc.conditioning("u0", source=3)
    with pytest.raises(InputError, match="empty list"):
        make_cond_score_fn(net, CPU, False, [])


def test_sources_of_different_lengths_are_padded_as_missing(net, tmp_path):
    short = B[:5]
    lc = _cond(net, _write(tmp_path / "ab", A, short))
    c1, c2 = lc.conditioning("u0", 1), lc.conditioning("u0", 2)
    assert c1["cond"].shape[1] == 7 and c2["cond"].shape[1] == 5 and bool(c2["cond_mask"].all())
    st = stack_sources([c1, c2])
    assert st["cond"].shape == (2, 7, 16) and st["cond_mask"].shape == (2, 7)
    assert st["cond_mask"][1].tolist() == [True] * 5 + [False] * 2 and float(st["cond_rel"][1, 5:].abs().sum()) == 0
    _close(st["cond"][1, :5], c2["cond"][0])
    x, t = _batch(b=1)
    padded = {n: v[1:] for n, v in st.items()}   # talker 2's conditioning, padded to 7 frames
    with torch.no_grad():
        s = lc.score_fn("u0")(x, t)
        _close(s[1], make_cond_score_fn(net, CPU, False, padded)(x[:1], t[:1])[0])
        _close(s[0], make_cond_score_fn(net, CPU, False, c1)(x[:1], t[:1])[0])


def test_classifier_free_guidance_per_source(net, tmp_path):
    d = _write(tmp_path / "ab", A, B)
    x, t = _batch()
    w = 2.5
    with torch.no_grad():
        conds = [_cond(net, d).conditioning("u0", k) for k in (1, 2)]
        s_c = make_cond_score_fn(net, CPU, False, conds)(x, t)
        s_u = make_cond_score_fn(net, CPU, False, conds, guidance=0.0)(x, t)
        got = _cond(net, d, guidance=w).score_fn("u0")(x, t)
    _close(s_u[1], s_u[0])                       # w = 0: every row without its lips
    assert _differ(s_c[0], s_u[0]) and _differ(s_c[1], s_u[1])
    _close(got, s_u + w * (s_c - s_u))
    assert _differ(got[0], got[1])


def test_missing_talker_lips(net, tmp_path):
    only = _write(tmp_path / "a", A)
    with pytest.raises(InputError, match=r"talker 2 needs .*lip2\.scp.*lip_sources: target"):
        _cond(net, only)
    assert _cond(net, only, n_sources=1).n_sources == 1   # one source needs lip.scp only
    # lip_sources: target: talker 1 conditioned, talker 2 with the video marked missing
    lc = _cond(net, only, lip_sources="target")
    x, t = _batch()
    with torch.no_grad():
        s = lc.score_fn("u0")(x, t)
        c1 = lc.conditioning("u0", 1)
        _close(s[0], make_cond_score_fn(net, CPU, False, c1)(x[:1], t[:1])[0])
        _close(s[1], make_cond_score_fn(net, CPU, False, c1, guidance=0.0)(x[:1], t[:1])[0])
    c2 = lc.conditioning("u0", 2)
    assert c2["cond"].shape[1] == len(A) and not bool(c2["cond_mask"].any())
    # the reliability table of talker 2 is needed too, and named
    with pytest.raises(InputError, match=r"lip_conf2\.scp"):
        _cond(net, _write(tmp_path / "noconf", A, B, conf=False))
    with pytest.raises(InputError, match="lip_sources"):
        _cond(net, only, lip_sources="both")
    # an utterance without an entry in lip2.scp
    d = _write(tmp_path / "ab", A, B)
    with open(os.path.join(d, "lip2.scp"), "w") as f:
        f.write(f"u9 {d}/lip2.npy\n")
    with pytest.raises(InputError, match=r"'u0'.*lip2\.scp"):
        _cond(net, d).score_fn("u0")
    # an audio-only model refuses the option
    ao = ScoreModel.from_config("ncsnpp", {"preset": "tiny", "nf": 8, "ch_mult": [1, 2, 2]}, SDES.build("ouve"))
    with pytest.raises(InputError, match="--lip_sources"):
        _cond(ao, only, lip_sources="target")
    assert _cond(ao, only) is None


def test_envelope_is_each_talkers_lip_variance(net, tmp_path):
    """ConditionedScore.envelope: talker k's lip-predicted standard deviation (K, F, T), the
    lip-variance head on that talker's lips; None without lips or without the head."""
    lc = _cond(net, _write(tmp_path / "ab", A, B))
    fn = lc.score_fn("u0")
    env = fn.envelope(64, 32)
    assert env.shape == (2, 64, 32) and env.dtype == torch.float32 and bool((env > 0).all())
    for k in (1, 2):
        c = lc.conditioning("u0", k)
        with torch.no_grad():
            want = net.lip_variance(c["cond"], c["cond_mask"], c["cond_rel"], 64, 32, 1)[0].exp()
        _close(env[k - 1], want)
    assert _differ(env[0], env[1])
    assert make_cond_score_fn(net, CPU, False, None).envelope(64, 32) is None
    plain = ScoreModel.from_config("ncsnpp", {"preset": "tiny", "nf": 8, "ch_mult": [1, 2, 2], "fusion": "concat",
                                              "lip_encoder": "resnet_tcn", "lip_encoder_conf": LIP}, SDES.build("ouve"))
    assert make_cond_score_fn(plain, CPU, False, lc.conditioning("u0")).envelope(64, 32) is None
