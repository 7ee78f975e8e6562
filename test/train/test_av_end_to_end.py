"""Audio-visual prior: training (exact resume), AV inference through avse.bin.enhance,
and the clear refusals when an audio-only and an audio-visual model are mixed up."""
import copy
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from avse.bin.enhance import main as enhance_main
from avse.bin.train import main as train_main
from avse.bin.train_lip_encoder import main as lip_main
from avse.io.scp import read_table
from avse.nets.storage import load_model
from avse.train.checkpoint import load_last_checkpoint
from testutils import speechlike

SMALL = ["--model_conf", "{preset: tiny, nf: 8, ch_mult: [1, 2, 2]}", "--crop_frames", "64",
         "--frontend_conf", "{n_fft: 126, hop: 32}", "--batch_size", "2", "--num_workers", "0",
         "--progress", "false", "--log_interval", "1", "--valid_interval", "1000", "--ckpt_interval", "1000"]
LIP = "{dim: 16, front_channels: 4, front_kernel: [3, 3, 3], channels: [8], input_pool: 4, tcn_layers: 1}"
AV = ["--lip_encoder", "resnet_tcn", "--lip_encoder_conf", LIP, "--model_conf.fusion", "gated_xattn",
      "--model_conf.lip_variance", "{bands: 8, hidden: 16}",
      "--visual_aug", "{p_drop_utt: 0.3, p_drop_frames: 0.3, p_occlude: 0.3}"]
FAST = {"method": "udiffse_plus", "method_conf": {"n_steps": 4, "n_samples": 2, "lik_period": 2, "noise_conf": {"rank": 2}}}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: torch on one thread


def _write_av(d, secs, noisy=False):
    """wav.scp, lip.scp (mouth brightness following the speech envelope), lip_conf.scp."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = {"wav.scp": [], "lip.scp": [], "lip_conf.scp": [], "utt2spk": []}
    for i, sec in enumerate(secs):
        x = speechlike(sec, f0=120 + 20 * i, seed=i)
        if noisy:
            x = x + 0.1 * rng.standard_normal(len(x)).astype(np.float32)
        sf.write(str(d / f"u{i}.wav"), x, 16000, subtype="FLOAT")
        T = int(np.ceil(len(x) * 25 / 16000))
        env = np.array([np.sqrt(np.mean(x[j * 640:(j + 1) * 640] ** 2)) for j in range(T)])
        lips = np.full((T, 88, 88), 110, np.uint8)
        lips[:, 35:60, 20:68] = (30 + 200 * env / env.max())[:, None, None].astype(np.uint8)
        np.save(d / f"u{i}_lip.npy", lips)
        np.save(d / f"u{i}_conf.npy", np.ones(T, np.float32))
        for name, val in (("wav.scp", f"u{i}.wav"), ("lip.scp", f"u{i}_lip.npy"), ("lip_conf.scp", f"u{i}_conf.npy")):
            rows[name].append(f"u{i} {d / val}\n")
        rows["utt2spk"].append(f"u{i} s{i}\n")
    for name, r in rows.items():
        (d / name).write_text("".join(r))
    return str(d)


@pytest.fixture(scope="module")
def av_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("avdata")
    return _write_av(root / "clean", [0.9, 1.1, 1.3]), _write_av(root / "noisy", [0.7, 1.0], noisy=True)


@pytest.fixture(scope="module")
def models(av_data, tmp_path_factory):
    clean, _ = av_data
    root = tmp_path_factory.mktemp("models")
    ao, av = str(root / "ao"), str(root / "av")
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the function-scoped one_thread
    assert train_main(["--train_dir", clean, "--out_dir", ao, "--max_steps", "2", *SMALL]) == 0
    assert train_main(["--train_dir", clean, "--valid_dir", clean, "--valid_utts", "2", "--out_dir", av,
                       "--max_steps", "2", *SMALL, *AV]) == 0
    torch.set_num_threads(n)
    return os.path.join(ao, "model.pt"), os.path.join(av, "model.pt")


def test_av_training_resumes_exactly(av_data, tmp_path):
    clean, _ = av_data
    common = ["--train_dir", clean, *SMALL, *AV, "--ckpt_interval", "2"]
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert train_main([*common, "--out_dir", a, "--max_steps", "4"]) == 0
    assert train_main([*common, "--out_dir", b, "--max_steps", "2"]) == 0
    assert train_main([*common, "--out_dir", b, "--max_steps", "4", "--resume", "true"]) == 0
    sa, sb = (load_last_checkpoint(os.path.join(d, "checkpoints")) for d in (a, b))
    assert sa["step"] == sb["step"] == 4
    for k, v in sa["model"].items():
        assert torch.equal(v, sb["model"][k]), k
    assert any(k.startswith("cond_encoder.") for k in sa["model"])


def test_av_model_file_and_lip_encoder_init(av_data, models, tmp_path, capfd):
    clean, _ = av_data
    ao_model, av_model = models
    m = load_model(av_model)
    assert m.model.audio_visual and m.model.config["model_conf"]["fusion"] == "gated_xattn"
    assert m.model.config["model_conf"]["lip_encoder"] == "resnet_tcn"
    assert not load_model(ao_model).model.audio_visual
    # synchrony pretraining, then a prior initialised from it with the encoder frozen
    lip_dir = str(tmp_path / "lip")
    assert lip_main(["--train_dir", clean, "--out_dir", lip_dir, "--lip_encoder_conf", LIP, "--crop_frames", "400",
                     "--max_shift", "3", "--window", "3", "--batch_size", "2", "--max_steps", "2", "--num_workers",
                     "0", "--frontend_conf", "{n_fft: 126, hop: 32}", "--log_interval", "1",
                     "--progress", "false"]) == 0
    enc_file = os.path.join(lip_dir, "lip_encoder.pt")
    frozen = str(tmp_path / "frozen")
    assert train_main(["--train_dir", clean, "--out_dir", frozen, "--max_steps", "2", *SMALL, *AV,
                       "--lip_encoder_init", enc_file, "--freeze_lip_encoder", "true"]) == 0
    init = torch.load(enc_file, weights_only=False)["state_dict"]
    got = load_last_checkpoint(os.path.join(frozen, "checkpoints"))["model"]
    assert all(torch.equal(v, got[f"cond_encoder.{k}"]) for k, v in init.items())
    # an audio-only score model is no lip-encoder initialisation
    capfd.readouterr()
    assert train_main(["--train_dir", clean, "--out_dir", str(tmp_path / "bad"), "--max_steps", "1", *SMALL,
                       *AV, "--lip_encoder_init", ao_model]) == 1
    assert "not a lip-encoder file" in capfd.readouterr().err


def test_ao_checkpoint_refuses_av_training_and_back(av_data, tmp_path, capfd):
    clean, _ = av_data
    d = str(tmp_path / "ao")
    assert train_main(["--train_dir", clean, "--out_dir", d, "--max_steps", "1", *SMALL, "--ckpt_interval", "1"]) == 0
    capfd.readouterr()
    assert train_main(["--train_dir", clean, "--out_dir", d, "--max_steps", "2", "--resume", "true",
                       *SMALL, *AV]) == 1
    err = capfd.readouterr().err
    assert "cannot resume" in err and "lip_encoder" in err
    d2 = str(tmp_path / "av")
    assert train_main(["--train_dir", clean, "--out_dir", d2, "--max_steps", "1", *SMALL, *AV,
                       "--ckpt_interval", "1"]) == 0
    capfd.readouterr()
    assert train_main(["--train_dir", clean, "--out_dir", d2, "--max_steps", "2", "--resume", "true",
                       *SMALL]) == 1
    err = capfd.readouterr().err
    assert "cannot resume" in err and "lip_encoder" in err


def test_av_enhancement_end_to_end(av_data, models, tmp_path, capfd):
    _, noisy = av_data
    ao_model, av_model = models
    conf = tmp_path / "fast.yaml"
    conf.write_text(yaml.safe_dump(FAST))
    base = ["--config", str(conf), "--data_dir", noisy, "--progress", "false"]
    outs = {}
    for deg in ("none", "missing50", "occlude", "shift3"):
        out = str(tmp_path / f"av_{deg}")
        assert enhance_main([*base, "--model", av_model, "--out_dir", out, "--lip_degrade", deg]) == 0
        assert enhance_main([*base, "--model", av_model, "--out_dir", out, "--lip_degrade", deg,
                             "--merge", "true"]) == 0
        outs[deg] = {k: sf.read(v)[0] for k, v in read_table(os.path.join(out, "wav.scp")).items()}
        assert sorted(outs[deg]) == ["u0", "u1"] and all(np.all(np.isfinite(y)) for y in outs[deg].values())
    assert not np.array_equal(outs["none"]["u0"], outs["missing50"]["u0"])
    # the closure passes the encoded lips with every call, expanded to the batch
    from avse.nets.lip_cond import LipConditioner
    m = load_model(av_model)
    lc = LipConditioner.for_model(m.model, noisy, None, "auto", "conf", torch.device("cpu"), False, "none", 0)
    c = lc.conditioning("u0")
    x = torch.randn(2, 64, 32, dtype=torch.complex64)
    t = torch.tensor([0.5, 0.5])
    with torch.no_grad():
        direct = m.model(x, t, cond=c["cond"].expand(2, -1, -1), cond_mask=c["cond_mask"].expand(2, -1),
                         cond_rel=c["cond_rel"].expand(2, -1))
    torch.testing.assert_close(lc.score_fn("u0")(x, t), direct)
    # a lip-reliability network scores the lips as given to the model (after degradation)
    from avse.lips.reliability import LipRelNet, save_lip_rel
    from avse.lips.tables import lip_tables, load_lips
    from avse.lips.corrupt import degrade
    from avse.utils.seeding import stable_hash
    torch.manual_seed(0)
    save_lip_rel(str(tmp_path / "rel.pt"), LipRelNet(pool=4, channels=(4,), emb=8, temporal=1).eval())
    lr = LipConditioner.for_model(m.model, noisy, None, "auto", "conf", torch.device("cpu"), False, "missing50", 3,
                                  rel_model_path=str(tmp_path / "rel.pt"))
    got = lr.conditioning("u1")
    lips, _ = load_lips(*lip_tables(noisy, "none")["u1"])
    rng = np.random.default_rng([3, stable_hash(3, "lip_degrade", "u1")])
    dl, dm, _ = degrade("missing50", lips, np.ones(len(lips), bool), np.ones(len(lips), np.float32), rng)
    want = lr.rel_model(dl) * dm
    np.testing.assert_allclose(got["cond_rel"][0].numpy(), want, rtol=1e-6)
    assert torch.equal(got["cond_mask"][0], torch.from_numpy(dm)) and 0 < want.max() < 1
    # lips for an audio-only model, and an audio-visual model without lips, are refused
    capfd.readouterr()
    assert enhance_main([*base, "--model", ao_model, "--out_dir", str(tmp_path / "x1"),
                         "--lip_scp", os.path.join(noisy, "lip.scp")]) == 1
    assert "audio-only model" in capfd.readouterr().err
    nolips = tmp_path / "nolips"
    nolips.mkdir()
    (nolips / "wav.scp").write_text(open(os.path.join(noisy, "wav.scp")).read())
    assert enhance_main([*base[:2], "--data_dir", str(nolips), "--progress", "false", "--model", av_model,
                         "--out_dir", str(tmp_path / "x2")]) == 1
    err = capfd.readouterr().err
    assert "audio-visual model" in err and "lip.scp" in err
    # an audio-only model ignores the lips of a data dir unless asked for them
    assert enhance_main([*base, "--model", ao_model, "--out_dir", str(tmp_path / "ao")]) == 0


def _two_talker_dir(clean, d, lip2=True):
    """Mixtures of talker u0 (or u1) with u2 cut to its length: wav.scp, spk1/spk2.scp, lip.scp and
    lip_conf.scp of talker 1, lip2.scp and lip_conf2.scp of talker 2 (longer: cut by the model)."""
    d.mkdir()
    wav, lip, conf = (read_table(os.path.join(clean, n)) for n in ("wav.scp", "lip.scp", "lip_conf.scp"))
    rows = {n: [] for n in ("wav.scp", "spk1.scp", "spk2.scp", "lip.scp", "lip_conf.scp", "lip2.scp",
                            "lip_conf2.scp", "utt2spk")}
    for key, (a, b) in {"m0": ("u0", "u2"), "m1": ("u1", "u2")}.items():
        x, _ = sf.read(wav[a], dtype="float32")
        y = sf.read(wav[b], dtype="float32")[0][:len(x)]
        for name, sig in (("wav", x + y), ("s1", x), ("s2", y)):
            sf.write(str(d / f"{key}_{name}.wav"), 0.5 * sig, 16000, subtype="FLOAT")
        for name, val in (("wav.scp", f"{d}/{key}_wav.wav"), ("spk1.scp", f"{d}/{key}_s1.wav"),
                          ("spk2.scp", f"{d}/{key}_s2.wav"), ("lip.scp", lip[a]), ("lip_conf.scp", conf[a]),
                          ("lip2.scp", lip[b]), ("lip_conf2.scp", conf[b]), ("utt2spk", key)):
            rows[name].append(f"{key} {val}\n")
    for name, r in rows.items():
        if lip2 or not name.endswith("2.scp") or name == "spk2.scp":
            (d / name).write_text("".join(r))
    return str(d)


def test_av_separation_conditions_each_source_on_its_talker(av_data, models, tmp_path, capfd):
    """Through avse.bin.enhance: a 2-source method with an AV prior reads lip.scp and lip2.scp,
    writes sources.json (fixed), and avse.bin.score then pairs output k with talker k; without
    lip2.scp it stops naming the table, unless --lip_sources target."""
    from avse.bin.score import main as score_main
    from avse.nets.lip_cond import LipConditioner

    clean, _ = av_data
    ao_model, av_model = models
    mix = _two_talker_dir(clean, tmp_path / "mix")
    conf = tmp_path / "sep.yaml"
    conf.write_text(yaml.safe_dump({"method": "separate", "method_conf": {
        "n_sources": 2, "n_steps": 3, "n_corrector": 0, "n_samples": 2, "guidance": ["dps", "projection"]}}))

    def enhance(model, out, data=mix, *extra):
        argv = ["--config", str(conf), "--data_dir", data, "--progress", "false", "--model", model,
                "--out_dir", str(tmp_path / out), *extra]
        rc = enhance_main(argv)
        if rc == 0:
            assert enhance_main(argv + ["--merge", "true"]) == 0
        return rc

    assert enhance(av_model, "av") == 0
    out = tmp_path / "av"
    for k in (1, 2):
        assert sorted(read_table(str(out / f"spk{k}.scp"))) == ["m0", "m1"]
    assert json.loads((out / "sources.json").read_text()) == {"n_sources": 2, "assignment": "fixed",
                                                               "lip_sources": "all"}
    # the score function of an utterance holds both talkers' lips, talker 2's from lip2.scp
    m = load_model(av_model)
    lc = LipConditioner.for_model(m.model, mix, None, "auto", "conf", torch.device("cpu"), False, "none", 0,
                                  n_sources=2)
    fn = lc.score_fn("m0")
    assert fn.n_sources == 2 and fn.cond["cond"].shape[0] == 2
    assert lc.conditioning("m0", 2)["cond"].shape[1] == len(np.load(read_table(os.path.join(mix, "lip2.scp"))["m0"]))
    # scored without permutation, output k against spk<k>.scp of the data dir
    assert score_main(["--ref_scp", os.path.join(mix, "spk1.scp"), "--inf_scp", str(out / "wav.scp"),
                       "--data_dir", mix, "--out_dir", str(out / "score"), "--metrics", "si_sdr"]) == 0
    meta = json.loads((out / "score" / "meta.json").read_text())
    assert meta["n_sources"] == 2 and meta["assignment"] == "fixed" and not (out / "score" / "perm").exists()
    # no lip2.scp: a clear error, or the target's lips only
    nolip2 = _two_talker_dir(clean, tmp_path / "mix1", lip2=False)
    capfd.readouterr()
    assert enhance(av_model, "x", nolip2) == 1
    err = capfd.readouterr().err
    assert "lip2.scp" in err and "lip_sources: target" in err
    assert enhance(av_model, "target", nolip2, "--lip_sources", "target") == 0
    assert json.loads((tmp_path / "target" / "sources.json").read_text())["lip_sources"] == "target"
    # an audio-only prior: the sources come in no particular order
    assert enhance(ao_model, "ao") == 0
    assert json.loads((tmp_path / "ao" / "sources.json").read_text())["assignment"] == "pit"


def test_lip_usage_cli(av_data, models, tmp_path, capfd):
    from avse.bin.lip_usage import main as usage_main

    clean, _ = av_data
    ao, av = models
    out = tmp_path / "usage"
    assert usage_main(["--model", av, "--data_dir", clean, "--n_crops", "3", "--times", "0.2", "0.8",
                       "--out_dir", str(out)]) == 0
    rows = json.loads((out / "lip_usage.json").read_text())["rows"]
    assert [r["t"] for r in rows] == [0.2, 0.8]
    assert all(np.isfinite([r[k] for k in ("true", "missing", "other")]).all() for r in rows)
    assert (out / "lip_usage.md").read_text().count("\n") == 4 and (out / "config.yaml").is_file()
    assert "content gain" in capfd.readouterr().out
    assert usage_main(["--model", ao, "--data_dir", clean]) == 1
    assert "not an audio-visual prior" in capfd.readouterr().err


def test_lip_usage_cli_diagnose(av_data, models, tmp_path, capfd):
    from avse.bin.lip_usage import main as usage_main

    clean, _ = av_data
    _, av = models
    out = tmp_path / "diag"
    base = ["--model", av, "--data_dir", clean, "--n_crops", "3", "--times", "0.3", "0.7",
            "--diagnose", "true", "--aug_draws", "12"]
    assert usage_main([*base, "--out_dir", str(out)]) == 0
    printed = capfd.readouterr().out
    res = json.loads((out / "lip_usage.json").read_text())
    d = res["diagnostics"]
    assert [r["t"] for r in res["rows"]] == [0.3, 0.7]
    assert set(d) == {"grad_norms", "embedding", "augmentation", "output_differences", "alignment", "findings"}
    assert set(d["grad_norms"]) == {"lip_encoder", "fusion", "lip_variance", "backbone_other"}
    assert all(r["param_norm"] > 0 and r["grad_norm"] >= 0 and not r["frozen"] for r in d["grad_norms"].values())
    assert d["embedding"]["dim"] == 16 and d["embedding"]["mean_norm"] > 0
    # the training config's visual_aug (p_drop_utt 0.3) from the model file
    aug = d["augmentation"]
    assert aug["draws"] == 12 and aug["augment"]["p_drop_utt"] == 0.3 and 0 <= aug["video_dropped"] <= 1
    assert [r["t"] for r in d["output_differences"]] == [0.3, 0.7]
    # hop 32 at 16 kHz (500 STFT frames/s): 64 frames = 3.2 video frames (crops hold 4 whole ones);
    # the model takes the training's rate (it used to assume 125 frames/s: 12.8 frames)
    al = d["alignment"]
    assert al["video_frames"] == 4 and al["data_spec_fps"] == 500.0 and al["max_abs_mismatch"] == pytest.approx(0.8)
    assert not any("misaligned" in f for f in d["findings"])
    md = (out / "lip_usage.md").read_text()
    assert md.startswith("| t | sigma |") and "## Diagnostics" in md and "| lip_encoder |" in md
    assert "Alignment:" in md and "## Diagnostics" in printed
    # --train_config overrides the stored training options (augmentation, frozen groups)
    cfg = tmp_path / "train.yaml"
    cfg.write_text("visual_aug: {p_drop_utt: 1.0}\nfreeze_lip_encoder: true\n")
    out2 = tmp_path / "diag2"
    assert usage_main([*base[:6], "--times", "0.5", "--diagnose", "true", "--aug_draws", "4",
                       "--train_config", str(cfg), "--out_dir", str(out2)]) == 0
    d2 = json.loads((out2 / "lip_usage.json").read_text())["diagnostics"]
    assert d2["augmentation"]["video_dropped"] == 1.0 and d2["augmentation"]["frames_masked"] == 1.0
    enc = d2["grad_norms"]["lip_encoder"]
    assert enc["frozen"] and enc["grad_norm"] is None and not d2["grad_norms"]["fusion"]["frozen"]
    assert any("frozen" in f for f in d2["findings"])


def test_av_prior_from_the_audio_only_prior_with_frozen_audio(av_data, models, tmp_path, capfd):
    """--init_model starts the audio part from the AO prior; --freeze_audio keeps it and
    trains only the lip encoder and the fusion modules (zero-initialised outputs)."""
    clean, _ = av_data
    ao, _ = models
    out = str(tmp_path / "adapt")
    assert train_main(["--train_dir", clean, "--out_dir", out, "--max_steps", "2", *SMALL, *AV,
                       "--init_model", ao, "--freeze_audio", "true"]) == 0
    assert f"from {ao}; new: backbone.fusions, cond_encoder" in capfd.readouterr().err
    av_sd = load_model(os.path.join(out, "model.pt")).model.state_dict()
    ao_sd = load_model(ao).model.state_dict()
    for k, v in ao_sd.items():
        torch.testing.assert_close(av_sd[k], v, rtol=1e-6, atol=1e-7)
    moved = [k for k in av_sd if k.startswith("backbone.fusions.") and k.endswith("out_add.weight")]
    assert moved and any(float(av_sd[k].abs().max()) > 0 for k in moved)
    assert train_main(["--train_dir", clean, "--out_dir", str(tmp_path / "x"), "--max_steps", "1", *SMALL,
                       *AV, "--freeze_audio", "true"]) == 1
    assert "--freeze_audio needs --lip_encoder and --init_model" in capfd.readouterr().err
    wrong = [a if a != "{n_fft: 126, hop: 32}" else "{n_fft: 254, hop: 64}" for a in SMALL]
    assert train_main(["--train_dir", clean, "--out_dir", str(tmp_path / "y"), "--max_steps", "1", *wrong,
                       *AV, "--init_model", ao]) == 1
    assert "front-end or SDE differs" in capfd.readouterr().err


def _utt2phones(d, keys_secs):
    """utt2phones of a data dir: varying phones with gaps, u1's from a file, the others inline."""
    names = ["b", "'a:", "m", "s", "_", "@2", "f", "i:", "p", "u:"]
    rows = []
    for i, (key, sec) in enumerate(keys_secs):
        t, trip = 0.02, []
        while t < sec - 0.05:
            dur = 0.05 + 0.03 * ((i + len(trip)) % 3)
            trip.append(f"{t:.3f} {t + dur:.3f} {names[(3 * i + len(trip)) % len(names)]}")
            t += dur + (0.04 if len(trip) % 4 == 0 else 0.0)
        if key == "u1":
            (d / "u1.ali").write_text("\n".join(trip) + "\n")
            rows.append(f"{key} {d / 'u1.ali'}\n")
        else:
            rows.append(f"{key} {' '.join(trip)}\n")
    (d / "utt2phones").write_text("".join(rows))


def test_lip_encoder_phone_pretraining(av_data, tmp_path, capfd):
    import csv
    import shutil

    clean, _ = av_data
    d = tmp_path / "clean_phones"
    shutil.copytree(clean, d)  # the fixture's dir is shared by the module: labels go into a copy
    _utt2phones(d, [("u0", 0.9), ("u1", 1.1), ("u2", 1.3)])
    lip_dir = tmp_path / "lip"
    common = ["--objective", "phones", "--lip_encoder_conf", LIP, "--crop_frames", "400", "--batch_size", "2",
              "--max_steps", "2", "--num_workers", "0", "--frontend_conf", "{n_fft: 126, hop: 32}",
              "--log_interval", "1", "--progress", "false"]
    assert lip_main(["--train_dir", str(d), "--valid_dir", str(d), "--valid_utts", "2", "--out_dir", str(lip_dir),
                     *common]) == 0
    enc_file = lip_dir / "lip_encoder.pt"
    assert enc_file.is_file() and "objective: phones" in (lip_dir / "config.yaml").read_text()
    with open(lip_dir / "train_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["1", "2"]
    for r in rows:
        acc = {k: float(r[k]) for k in ("accuracy", "viseme_accuracy", "valid_accuracy", "valid_viseme_accuracy")}
        assert all(0 <= v <= 1 for v in acc.values()), r
        # a right phone is a right viseme
        assert acc["viseme_accuracy"] >= acc["accuracy"] and acc["valid_viseme_accuracy"] >= acc["valid_accuracy"]
        assert np.isfinite(float(r["loss"])) and np.isfinite(float(r["valid_loss"])) and float(r["loss"]) > 0
    saved = torch.load(enc_file, weights_only=False)
    assert saved["lip_encoder"] == "resnet_tcn" and saved["step"] == 2
    assert saved["valid_accuracy"] == pytest.approx(float(rows[-1]["valid_accuracy"]), abs=1e-4)
    assert not any(k.startswith("head") for k in saved["state_dict"])  # the encoder only, no classifier
    # the prior takes the encoder as its initialisation
    frozen = str(tmp_path / "frozen")
    assert train_main(["--train_dir", clean, "--out_dir", frozen, "--max_steps", "1", *SMALL, *AV,
                       "--lip_encoder_init", str(enc_file), "--freeze_lip_encoder", "true"]) == 0
    got = load_last_checkpoint(os.path.join(frozen, "checkpoints"))["model"]
    assert all(torch.equal(v, got[f"cond_encoder.{k}"]) for k, v in saved["state_dict"].items())
    # without time alignments the phone objective is refused, naming the table
    capfd.readouterr()
    bad = tmp_path / "bad"
    assert lip_main(["--train_dir", clean, "--out_dir", str(bad), *common]) == 1
    assert "utt2phones" in capfd.readouterr().err and not (bad / "lip_encoder.pt").exists()


def test_lip_classifier_free_guidance(av_data, models, tmp_path, capfd):
    from avse.errors import InputError
    from avse.nets.lip_cond import LipConditioner

    from avse.lips.tables import lip_tables

    _, noisy = av_data
    ao_model, av_model = models
    m = load_model(av_model)
    cpu = torch.device("cpu")
    # the fusion outputs start at zero and 2 training steps leave the lips almost unused:
    # random fusion outputs make the conditional and unconditional scores differ clearly
    net = copy.deepcopy(m.model).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith("backbone.fusions.") and (".out_add." in name or ".out_mul." in name):
                p.copy_(0.3 * torch.randn_like(p))
    lips = lip_tables(noisy, "conf")

    def cond(w):
        return LipConditioner(net, lips, cpu, guidance=w)

    c = cond(1.0).conditioning("u0")
    x = torch.randn(3, 64, 32, dtype=torch.complex64)
    t = torch.tensor([0.5, 0.3, 0.8])
    with torch.no_grad():
        kw = {k: v.expand(3, *v.shape[1:]) for k, v in c.items()}
        s_c = net(x, t, **kw)
        s_u = net(x, t, cond=kw["cond"], cond_mask=torch.zeros_like(kw["cond_mask"]),
                  cond_rel=torch.zeros_like(kw["cond_rel"]))
    assert (s_c - s_u).abs().max() > 0.05 * s_c.abs().max()  # the lips change the score
    tol = dict(rtol=1e-5, atol=1e-5 * float(s_c.abs().max()))
    torch.testing.assert_close(cond(1.0).score_fn("u0")(x, t), s_c, **tol)
    torch.testing.assert_close(cond(0.0).score_fn("u0")(x, t), s_u, **tol)
    for w in (2.5, 0.5):
        got = cond(w).score_fn("u0")(x, t)
        assert got.shape == s_c.shape and got.dtype == torch.complex64
        torch.testing.assert_close(got, s_u + w * (s_c - s_u), **tol)
    # a scalar time is broadcast over the batch
    with torch.no_grad():
        s_c5, s_u5 = (net(x, torch.full((3,), 0.5), cond=kw["cond"], cond_mask=mk, cond_rel=r)
                      for mk, r in ((kw["cond_mask"], kw["cond_rel"]),
                                    (torch.zeros_like(kw["cond_mask"]), torch.zeros_like(kw["cond_rel"]))))
    torch.testing.assert_close(cond(2.0).score_fn("u0")(x, 0.5), s_u5 + 2.0 * (s_c5 - s_u5), **tol)
    for w in (-0.5, float("nan")):
        with pytest.raises(InputError, match=">= 0"):
            cond(w)
        with pytest.raises(InputError, match=">= 0"):
            LipConditioner.for_model(m.model, noisy, None, "auto", "conf", cpu, False, "none", 0, guidance=w)
    # through the enhancer: guidance changes the output; an audio-only model refuses it
    conf = tmp_path / "fast.yaml"
    conf.write_text(yaml.safe_dump(FAST))
    base = ["--config", str(conf), "--data_dir", noisy, "--progress", "false"]
    outs = {}
    for w in ("1", "3"):
        out = str(tmp_path / f"g{w}")
        assert enhance_main([*base, "--model", av_model, "--out_dir", out, "--lip_guidance", w]) == 0
        assert enhance_main([*base, "--model", av_model, "--out_dir", out, "--lip_guidance", w,
                             "--merge", "true"]) == 0
        outs[w] = {k: sf.read(v)[0] for k, v in read_table(os.path.join(out, "wav.scp")).items()}
        assert all(np.all(np.isfinite(y)) for y in outs[w].values())
    assert not np.allclose(outs["1"]["u0"], outs["3"]["u0"])
    capfd.readouterr()
    assert enhance_main([*base, "--model", ao_model, "--out_dir", str(tmp_path / "ao"), "--lip_guidance", "2"]) == 1
    err = capfd.readouterr().err
    assert "audio-only model" in err and "--lip_guidance" in err
    assert enhance_main([*base, "--model", av_model, "--out_dir", str(tmp_path / "neg"),
                         "--lip_guidance", "-1"]) == 1
    assert ">= 0" in capfd.readouterr().err


def test_shuffled_lips_are_the_next_utterance(av_data, models, tmp_path):
    from avse.nets.lip_cond import LipConditioner
    from avse.lips.tables import lip_tables, load_lips

    clean, noisy = av_data
    _, av_model = models
    m = load_model(av_model)
    cpu = torch.device("cpu")
    lc = LipConditioner.for_model(m.model, clean, None, "auto", "conf", cpu, False, "shuffle", 0)
    plain = LipConditioner.for_model(m.model, clean, None, "auto", "conf", cpu, False, "none", 0)
    lips = {k: load_lips(*v)[0] for k, v in lip_tables(clean, "none").items()}
    assert [len(lips[k]) for k in ("u0", "u1", "u2")] == [23, 28, 33]
    # u0 gets u1's lips cut to its 23 frames; u2 (the last key) gets u0's, padded as missing
    for key, other in (("u0", "u1"), ("u2", "u0")):
        n, n_o = len(lips[key]), len(lips[other])
        want = np.zeros_like(lips[key])
        want[:min(n, n_o)] = lips[other][:n]
        mask = np.arange(n) < n_o
        lt, mt = torch.from_numpy(want)[None], torch.from_numpy(mask)[None]
        with torch.no_grad():
            emb = m.model.encode_cond(lt, mt)
        got = lc.conditioning(key)
        assert got["cond"].shape == (1, n, emb.shape[-1])
        torch.testing.assert_close(got["cond"], emb)
        assert torch.equal(got["cond_mask"], mt)
        torch.testing.assert_close(got["cond_rel"], mt.float())  # lip_conf is 1 on present frames
        assert not torch.allclose(got["cond"], plain.conditioning(key)["cond"])
    assert bool(lc.conditioning("u2")["cond_mask"][0, 22]) and not lc.conditioning("u2")["cond_mask"][0, 23:].any()
    # the command line takes it
    conf = tmp_path / "fast.yaml"
    conf.write_text(yaml.safe_dump(FAST))
    out = str(tmp_path / "shuffle")
    assert enhance_main(["--config", str(conf), "--data_dir", noisy, "--progress", "false", "--model", av_model,
                         "--out_dir", out, "--lip_degrade", "shuffle"]) == 0
    assert enhance_main(["--config", str(conf), "--data_dir", noisy, "--progress", "false", "--model", av_model,
                         "--out_dir", out, "--lip_degrade", "shuffle", "--merge", "true"]) == 0
    assert sorted(read_table(os.path.join(out, "wav.scp"))) == ["u0", "u1"]
