"""The noise-embedding stages end to end on a tiny corpus: train (with external features),
items of three modalities, retrieval, per-utterance conditions."""
import json
import os

import numpy as np
import pytest

from avse.bin import noise_condition, noise_retrieval, prep_noise_embed, train_noise_embed
from avse.corpus.synthetic.noise import generate_noise
from avse.io.scp import read_table
from avse.nets.noise_embedder import NoiseEmbedder
from avse.utils.seeding import utt_rng

pytestmark = pytest.mark.usefixtures("one_thread")
TYPES = ["white", "brown", "music"]


@pytest.fixture
def noise_dir(tmp_path, make_wav):
    d = tmp_path / "noise"
    d.mkdir()
    wav, u2n, ext = {}, {}, {}
    for t in TYPES:
        for i in range(2):
            k = f"{t}_{i}"
            wav[k] = make_wav(f"nw/{k}.wav", 0.1 * generate_noise(t, 1.2, 16000, utt_rng(0, k)))
            u2n[k] = t
            ext[k] = str(tmp_path / f"ext_{k}.npy")
            np.save(ext[k], np.eye(3, 5)[TYPES.index(t)] + 0.01 * i)
    for name, tab in (("wav.scp", wav), ("utt2noise", u2n)):
        (d / name).write_text("".join(f"{k} {v}\n" for k, v in sorted(tab.items())))
    (tmp_path / "ext.scp").write_text("".join(f"{k} {v}\n" for k, v in sorted(ext.items())))
    return str(d)


def test_stages(tmp_path, noise_dir, tiny_data_dir, capsys):
    exp = str(tmp_path / "exp")
    assert train_noise_embed.main(["--noise_dir", noise_dir, "--out_dir", exp, "--steps", "8",
                                   "--decoder_steps", "2", "--decoder_n_fft", "62", "--decoder_hop", "32",
                                   "--decoder_rank", "2", "--clip_seconds", "0.5", "--dim", "8", "--hidden", "16",
                                   "--vocab_size", "120", "--text_per_type", "30",
                                   "--embed_scp", str(tmp_path / "ext.scp"), "--speech_dir", tiny_data_dir,
                                   "--max_speech", "3", "--decoder_clip", "3", "--decoder_disc_steps", "2"]) == 0
    model = os.path.join(exp, "model.pt")
    emb = NoiseEmbedder.load(model)
    assert emb.meta["types"] == sorted(TYPES) and emb.meta["ext_dim"] == 5
    assert emb.meta["decoder"]["speech"] == 3 and emb.meta["decoder"]["clip"] == 3.0   # discriminative decoder
    assert train_noise_embed.main(["--noise_dir", noise_dir, "--out_dir", str(tmp_path / "bad"),
                                   "--decoder_snr", "[5]"]) == 1    # not a [low, high] range: a clear error
    assert train_noise_embed.main(["--noise_dir", noise_dir, "--out_dir", str(tmp_path / "bad"),
                                   "--speech_dir", tiny_data_dir]) == 1    # speech without disc steps
    rows = open(os.path.join(exp, "train_log.csv")).read()
    assert "decoder_disc" in rows
    assert os.path.isfile(os.path.join(exp, "config.yaml")) and os.path.isfile(os.path.join(exp, "train_log.csv"))

    items = str(tmp_path / "items_dir")
    assert prep_noise_embed.main(["--noise_dir", noise_dir, "--out_dir", items, "--item_dir",
                                  str(tmp_path / "items"), "--per_type", "2", "--clip_seconds", "0.5"]) == 0
    assert sorted(read_table(os.path.join(items, "utt2noise")).values()) == sorted(TYPES * 2)
    out = str(tmp_path / "ret.json")
    assert noise_retrieval.main(["--model", model, "--data_dir", items, "--trials", "2", "--out", out]) == 0
    res = json.load(open(out))
    assert res["n_types"] == 3 and set(res["top1"]) >= {"audio->text", "image->text", "audio->image"}
    assert all(0 <= v <= 1 for v in res["top1"].values())
    assert "top-1 retrieval" in capsys.readouterr().out

    # conditions of a data dir: its utterances mixed with white_0 / brown_1 / ...
    keys = sorted(read_table(os.path.join(tiny_data_dir, "wav.scp")))
    mixed = {k: f"{TYPES[i % 3]}_{i % 2}" for i, k in enumerate(keys)}
    with open(os.path.join(tiny_data_dir, "utt2noise"), "w") as f:
        f.writelines(f"{k} {mixed[k].rsplit('_', 1)[0]}\n" for k in keys)
    with open(os.path.join(tiny_data_dir, "utt2source"), "w") as f:
        f.writelines(f"{k} {k} {mixed[k]} 0.0\n" for k in keys)
    cond = str(tmp_path / "cond")
    assert noise_condition.main(["--model", model, "--data_dir", tiny_data_dir, "--out_dir", cond,
                                 "--noise_dir", noise_dir, "--clip_seconds", "0.5"]) == 0
    for name in ("wav.scp", "noise_text", "noise_image.scp", "noise_clip.scp", "noise_embed_text.scp",
                 "noise_embed_image.scp", "noise_embed_clip.scp"):
        assert set(read_table(os.path.join(cond, name))) == set(keys), name
    e = np.load(read_table(os.path.join(cond, "noise_embed_image.scp"))[keys[0]])
    assert e.shape == (8,) and abs(np.linalg.norm(e) - 1) < 1e-4
    # a clip never comes from the recording that was mixed
    cfg = read_table(os.path.join(cond, "noise_clip.scp"))
    assert all(os.path.isfile(v) for v in cfg.values())
    assert noise_condition.main(["--model", model, "--data_dir", tiny_data_dir, "--out_dir", cond,
                                 "--modalities", "[clip]"]) == 1   # no --noise_dir: a clear error


def test_noise_tracker_stage(tmp_path, noise_dir, tiny_data_dir):
    """avse.bin.train_noise_tracker with a noise embedding, then ``noise: tracker`` on one input:
    a variance per bin (zero on the padding), changed by the condition; bad uses refused."""
    import torch

    from avse.bin import train_noise_tracker
    from avse.dsp.stft import SpectralFrontEnd
    from avse.enhance.noise_choice import NOISES
    from avse.enhance.noise_models import CompressedDomainNoise
    from avse.errors import InputError

    emb_dir = str(tmp_path / "emb")
    assert train_noise_embed.main(["--noise_dir", noise_dir, "--out_dir", emb_dir, "--steps", "2",
                                   "--decoder_steps", "1", "--decoder_n_fft", "62", "--decoder_hop", "16",
                                   "--decoder_rank", "2", "--clip_seconds", "0.5", "--dim", "8", "--hidden", "16",
                                   "--vocab_size", "120", "--text_per_type", "30"]) == 0
    common = ["--speech_dir", tiny_data_dir, "--noise_dir", noise_dir, "--n_fft", "62", "--hop", "16",
              "--hidden", "8", "--blocks", "2", "--steps", "2", "--batch_size", "2", "--seconds", "0.5",
              "--max_speech", "3", "--num_threads", "1"]
    exp = str(tmp_path / "trk")
    assert train_noise_tracker.main(common + ["--out_dir", exp, "--embed_model", os.path.join(emb_dir, "model.pt"),
                                              "--embeds_per_type", "2"]) == 0
    for name in ("model.pt", "train_log.csv", "loss.png", "config.yaml"):
        assert os.path.isfile(os.path.join(exp, name)), name
    blind = str(tmp_path / "trk_blind")
    assert train_noise_tracker.main(common + ["--out_dir", blind]) == 0
    assert train_noise_tracker.main(common + ["--out_dir", blind, "--reverb_prob", "2"]) == 1
    assert train_noise_tracker.main(common + ["--out_dir", blind, "--snr", "[5]"]) == 1

    fe = SpectralFrontEnd(n_fft=62, hop=16)
    X = fe.stft(torch.from_numpy(0.1 * generate_noise("music", 0.5, 16000, utt_rng(0, "x")).astype(np.float32)))
    Xn, T = fe.pad_frames(fe.compress(X / X.abs().max()), 8)
    assert Xn.shape[-1] > T
    e = NoiseEmbedder.load(os.path.join(emb_dir, "model.pt")).texts(["music from a radio"])[0].numpy()
    model = os.path.join(exp, "model.pt")
    obs = NOISES.build("tracker", model=model, embed="text").observation(Xn, frontend=fe, noise_embed_text=e)
    assert isinstance(obs, CompressedDomainNoise)
    V = obs.linear_psd()
    assert V.shape == Xn.shape and (V[:, :T] > 0).all() and (V[:, T:] == 0).all()
    V0 = NOISES.build("tracker", model=model).observation(Xn, frontend=fe).linear_psd()
    assert not torch.allclose(V, V0)                                 # the condition changes the estimate
    V2 = NOISES.build("tracker", model=model, bias=2.0).observation(Xn, frontend=fe).linear_psd()
    assert torch.allclose(V2, 2 * V0)
    # floor: never below a multiple of the stationary quantile PSD; a huge one is that PSD alone
    Vf = NOISES.build("tracker", model=model, floor=2.0).observation(Xn, frontend=fe).linear_psd()
    assert (Vf >= V0).all() and (Vf[:, T:] == 0).all() and (Vf > V0).any()
    Vs = NOISES.build("tracker", model=model, floor=1e6).observation(Xn, frontend=fe).linear_psd()
    raised = Vs[:, :T] > V0[:, :T]                                   # where the floor decides: one value per bin
    assert (Vs >= V0).all() and raised.float().mean() > 0.5
    level = Vs[:, :T].where(raised, torch.zeros(())).amax(1, keepdim=True).expand(-1, T)
    assert torch.allclose(Vs[:, :T][raised], level[raised])
    with pytest.raises(InputError, match="no embedding"):
        NOISES.build("tracker", model=model, embed="text").observation(Xn, frontend=fe)
    with pytest.raises(InputError, match="without an embedding"):
        NOISES.build("tracker", model=os.path.join(blind, "model.pt"), embed="text").observation(
            Xn, frontend=fe, noise_embed_text=e)
    with pytest.raises(InputError, match="n_fft"):
        NOISES.build("tracker", model=model).observation(fe.compress(torch.ones(256, 9, dtype=torch.complex64)),
                                                         frontend=SpectralFrontEnd())
    for bad, msg in (({}, "noise_conf.model"), ({"model": model, "bias": 0}, "bias"),
                     ({"model": model, "floor": -1}, "floor"),
                     ({"model": str(tmp_path / "none.pt")}, "not found")):
        with pytest.raises(InputError, match=msg):
            NOISES.build("tracker", **bad).observation(Xn, frontend=fe)
    assert NOISES.build("tracker", model=model, embed="image").needs == ("noise_embed_image.scp",)
