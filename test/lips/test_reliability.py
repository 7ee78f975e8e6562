"""Lip-reliability network: learns clean vs corrupted on rendered mini_av mouths;
training command, saved model, inference command."""
import json
import os

import numpy as np
import pytest
import torch

from avse.bin.lip_rel import main as rel_main
from avse.bin.train_lip_rel import main as train_main
from avse.corpus.synthetic.mouth import MouthAppearance, render_utterance
from avse.corpus.types import PhonemeEvent
from avse.errors import InputError
from avse.io.scp import read_table
from avse.lips.corrupt import missing, occlude
from avse.lips.rel_train import auc, evaluate
from avse.lips.reliability import LipRelNet, load_lip_rel

PHONES = ["b", "a", "m", "i:", "f", "u:", "T", "aI", "s", "o:", "w", "e", "p", "O"]
NET = "{pool: 4, channels: [8, 16], emb: 16, temporal: 3}"  # small: the test trains in seconds


def render_clips(n, seed, frames=24):
    """``n`` mini_av-style mouth clips of random phoneme strings and speakers."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ev, t = [], 0.08
        while t < frames / 25 - 0.15:
            d = rng.uniform(0.06, 0.2)
            ev.append(PhonemeEvent(t, t + d, str(rng.choice(PHONES))))
            t += d
        app = MouthAppearance.sample(rng)
        out.append(render_utterance(ev, int(frames / 25 * 16000), 16000, app, seed=int(rng.integers(1 << 30))))
    return out


@pytest.fixture(scope="module")
def lip_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("lips")
    clips = render_clips(36, seed=0)
    lip, conf = {}, {}
    for i, c in enumerate(clips):
        k = f"utt{i:03d}"
        lip[k], conf[k] = str(d / f"{k}.npy"), str(d / f"{k}_conf.npy")
        np.save(lip[k], c)
        cf = np.ones(len(c), np.float32)
        cf[:3] = 0  # interpolated frames: not used for training
        np.save(conf[k], cf)
    for name, tab in (("lip.scp", lip), ("lip_conf.scp", conf)):
        with open(d / name, "w") as f:
            f.writelines(f"{k} {tab[k]}\n" for k in sorted(tab))
    return str(d)


@pytest.fixture(scope="module")
def trained(lip_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("exp") / "lip_rel")
    torch.manual_seed(0)
    assert train_main(["--lip_scp", os.path.join(lip_dir, "lip.scp"), "--out_dir", out, "--steps", "200",
                       "--batch_size", "8", "--clip_len", "16", "--valid_frac", "0.2", "--net_conf", NET,
                       "--verbose", "0"]) == 0
    return out


def test_network_separates_clean_from_corrupted(trained):
    with open(os.path.join(trained, "valid.json")) as f:
        v = json.load(f)
    assert v["n_valid_utts"] == 7 and v["n_train_utts"] == 29
    assert v["history"][-1]["loss"] < 0.8 * v["history"][0]["loss"]
    # held-out speakers: clean vs corrupted frames are separated
    assert v["auc"] > 0.9 and v["accuracy"] > 0.8, v
    for kind in ("missing", "occlude", "dark"):
        assert v[f"accuracy_{kind}"] > 0.8, (kind, v)
    # the same evaluation fails with the untrained network
    torch.manual_seed(0)
    fresh = render_clips(6, seed=99)
    untrained = evaluate(LipRelNet(pool=4, channels=[8, 16], emb=16, temporal=3), fresh)
    assert untrained["auc"] < 0.9 or untrained["accuracy"] < 0.8
    trained_net = load_lip_rel(os.path.join(trained, "model.pt")).net
    again = evaluate(trained_net, fresh)
    assert again["auc"] > 0.9 and again["auc"] > untrained["auc"]


def test_loadable_model_scores_frames(trained):
    rel = load_lip_rel(os.path.join(trained, "model.pt"))
    clip = render_clips(1, seed=7, frames=40)[0]
    rng = np.random.default_rng(0)
    mask = np.zeros(40, bool)
    mask[10:30] = True
    bad, _ = missing(clip, rng, mask, fill="zero")
    bad, _ = occlude(bad, rng, np.r_[[False] * 20, [True] * 10, [False] * 10])
    s_clean, s_bad = rel.reliability(clip), rel(bad)
    assert s_clean.shape == (40,) and s_clean.dtype == np.float32
    assert np.all((s_bad >= 0) & (s_bad <= 1))
    assert auc(np.concatenate([s_clean, s_bad[mask]]), np.r_[np.ones(40), np.zeros(20)]) > 0.9
    smooth = load_lip_rel(os.path.join(trained, "model.pt"), smooth=5).reliability(bad)
    assert np.abs(np.diff(smooth)).sum() <= np.abs(np.diff(s_bad)).sum() + 1e-6
    with pytest.raises(InputError, match="uint8"):
        rel.reliability(clip[:, :80, :80])
    with pytest.raises(InputError, match="not found"):
        load_lip_rel(os.path.join(trained, "nope.pt"))


def test_lip_rel_command_writes_table(trained, lip_dir, tmp_path):
    out = str(tmp_path / "rel")
    opts = ["--data_dir", lip_dir, "--model", os.path.join(trained, "model.pt"), "--out_dir", out,
            "--progress", "false"]
    assert rel_main(opts) == 0
    tab = read_table(os.path.join(out, "lip_rel.scp"))
    lips = read_table(os.path.join(lip_dir, "lip.scp"))
    assert list(tab) == list(lips)
    for k in list(tab)[:3]:
        s = np.load(tab[k])
        assert s.dtype == np.float32 and s.shape == (len(np.load(lips[k])),)
    assert os.path.isfile(os.path.join(out, "lip_rel", "config.yaml"))
    # resumable: a second run keeps the files already written
    first = os.path.getmtime(tab[next(iter(tab))])
    assert rel_main(opts) == 0 and os.path.getmtime(tab[next(iter(tab))]) == first
    assert rel_main(["--data_dir", str(tmp_path), "--model", os.path.join(trained, "model.pt")]) == 1
