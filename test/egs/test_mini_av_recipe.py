"""The mini_av recipe, run as a user runs it, at the tiny size: stages 1-3 and 6 (data and
noisy-input scores), then 4-6 with a briefly trained prior and shortened samplers; stage 8
on a small scored experiment."""
import json
import os
import subprocess
import sys

import numpy as np

import pytest

from testutils import REPO, recipe_copy, run_recipe, scored_experiment

RECIPE = os.path.join(REPO, "egs", "mini_av", "avse1")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    d = recipe_copy(RECIPE, str(tmp_path_factory.mktemp("mini_av") / "avse1"))
    env = dict(os.environ, AVSE_PYTHON=sys.executable, MINI_AV=os.path.join(d, "corpus"))
    run_recipe(d, ["--stage", "1", "--stop_stage", "3", "--local_data_opts", "--size tiny --nj 2"], env)
    return d, env


def _lines(path):
    with open(path) as f:
        return f.read().splitlines()


def test_stages_1_to_3_make_valid_dirs(recipe):
    d, env = recipe
    for s in ("train", "valid", "test", "noise_train", "noise_test", "noise_dev", "noise_train_many", "test_noisy",
              "test_reverb", "dev_noisy"):
        r = subprocess.run([f"{d}/utils/validate_data_dir.sh", f"{d}/data/{s}"], env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    # speaker-disjoint splits, >= 12 speakers, one video per utterance
    spk = {s: {l.split()[0] for l in _lines(f"{d}/data/{s}/spk2utt")} for s in ("train", "valid", "test")}
    assert not (spk["train"] & spk["test"]) and not (spk["train"] & spk["valid"]) and not (spk["valid"] & spk["test"])
    assert len(spk["train"] | spk["valid"] | spk["test"]) >= 12
    assert len(_lines(f"{d}/data/train/video.scp")) == len(_lines(f"{d}/data/train/wav.scp"))
    # the development set: validation speakers only, never a test speaker
    assert {l.split()[1] for l in _lines(f"{d}/data/dev_noisy/utt2spk")} <= spk["valid"]
    # the three SNRs in turn over the test utterances, with lips in the dump
    snrs = {l.split()[1] for l in _lines(f"{d}/data/test_noisy/utt2snr")}
    assert snrs == {"-5", "0", "5"}
    assert len(_lines(f"{d}/dump/raw/test_noisy/lip.scp")) == len(_lines(f"{d}/data/test_noisy/wav.scp"))
    assert os.path.isfile(f"{d}/data/test_reverb/utt2t60") and os.path.isfile(f"{d}/data/test_reverb/rir1.scp")
    assert os.path.isfile(f"{d}/data/noise_test/noise_desc")
    # held-out noise for choosing settings of noise-trained models: other recordings than training's
    import soundfile as sf

    def first_second(split):
        return [sf.read(os.path.join(d, l.split()[1]), frames=16000)[0] for l in _lines(f"{d}/data/{split}/wav.scp")]

    dev_noise, train_noise = first_second("noise_dev"), first_second("noise_train")
    assert len(dev_noise) == 12 and not any(np.allclose(a, b) for a in dev_noise for b in train_noise)
    assert {l.split()[1] for l in _lines(f"{d}/data/noise_dev/utt2noise")} == {"babble", "cafe", "music", "traffic"}
    # the noise tracker's training noise: every training type, other recordings than training's and dev's
    many = first_second("noise_train_many")
    types = {split: {l.split()[1] for l in _lines(f"{d}/data/{split}/utt2noise")}
             for split in ("noise_train", "noise_train_many")}
    assert types["noise_train_many"] == types["noise_train"] and len(many) == len(types["noise_train"])  # 1 each: tiny
    assert not any(np.allclose(a, b) for a in many for b in train_noise + dev_noise)


def test_rerun_skips_finished_work(recipe):
    d, env = recipe
    r = run_recipe(d, ["--stage", "2", "--stop_stage", "3"], env)
    assert r.stderr.count("is complete, skipping") >= 5


def test_stage_6_writes_results_with_noisy_rows(recipe):
    d, env = recipe
    run_recipe(d, ["--stage", "6", "--stop_stage", "6"], env)
    text = open(f"{d}/RESULTS.md").read()
    assert "test_noisy" in text and "test_reverb" in text and "noisy" in text
    summary = f"{d}/exp/noisy/test_noisy/score/summary.json"
    s = json.load(open(summary))
    assert -10 < s["si_sdr"] < 10 and 1.0 <= s["pesq_wb"] <= 4.7


def test_stage_before_inputs_fails_clearly(recipe, tmp_path):
    d = recipe_copy(RECIPE, str(tmp_path / "fresh"))
    env = dict(recipe[1], MINI_AV=str(tmp_path / "c"))
    r = run_recipe(d, ["--stage", "3", "--stop_stage", "3"], env, check=False)
    assert r.returncode != 0 and "run stages 1-2 first" in r.stderr
    r = run_recipe(d, ["--stage", "5", "--stop_stage", "5"], env, check=False)
    assert r.returncode != 0 and "train the prior first" in r.stderr
    r = run_recipe(d, ["--stage", "1", "--bogus_option", "1"], env, check=False)
    assert r.returncode != 0 and "bogus" in r.stderr
    for opt in ("--task", "--modality", "--prior"):
        r = run_recipe(d, [opt, "bogus"], env, check=False)
        assert r.returncode == 2 and f"{opt} must be" in r.stderr
    r = run_recipe(d, ["--prior", "vae", "--task", "restore"], env, check=False)
    assert r.returncode == 2 and "denoising only" in r.stderr
    r = run_recipe(d, ["--task"], env, check=False)
    assert r.returncode == 2 and "--task needs a value" in r.stderr


def test_stage_8_listening_page(tmp_path):
    """Stage 8 on an experiment scored elsewhere (no corpus needed): the page of every
    scored system lands in exp/listening; a re-run keeps it."""
    d = recipe_copy(RECIPE, str(tmp_path / "avse1"))
    scored_experiment(tmp_path / "avse1")
    env = dict(os.environ, AVSE_PYTHON=sys.executable)
    run_recipe(d, ["--stage", "8", "--listening_opts", "--max_utts 2"], env)
    page = open(f"{d}/exp/listening/tst/index.html").read()
    assert page.count("<audio ") == 2 * 4 and "sysB" in page
    assert "avse1" in open(f"{d}/exp/listening/index.html").read()
    r = run_recipe(d, ["--stage", "8", "--listening_opts", "--max_utts 2"], env)
    assert "wrote 0 clips and 0 spectrograms" in r.stderr


def _per_utt(path):
    return {k: float(v) for k, v in (line.split() for line in _lines(path))}


def test_stages_4_to_6_train_enhance_and_score(recipe):
    """A ~75-second prior (300 steps of 4 crops of 64 frames) and shortened samplers (6 steps;
    the default configs take about 15 minutes at the default size): the wiring of stages 4-6,
    and UDiffSE improving SI-SDR. Measured on this tiny test set (2 mixtures at 0 dB), UDiffSE
    gain at 0 dB: +2.0 dB here; 400 steps of 4 x 128 frames +3.0 (8 sampler steps: +3.3); the
    recipe's 400 steps of 8 x 256 frames (5 minutes on 2 cores) +3.7; at 150 steps of 8 x 256
    frames the prior still distorted speech and UDiffSE fell 2-3 dB below the input."""
    d, env = recipe
    train = ("--max_steps 300 --batch_size 4 --crop_frames 64 --ckpt_interval 150 --valid_interval 150 "
             "--log_interval 50")
    n = 6
    infer = f"--method_conf.n_steps {n} --method_conf.n_samples 2"  # applies to all configs
    run_recipe(d, ["--stage", "4", "--stop_stage", "6", "--train_args", train, "--inference_args", infer], env)
    prior = f"{d}/exp/train"
    for f in ("model.pt", "config.yaml", "train_log.csv", "loss.png"):
        assert os.path.isfile(f"{prior}/{f}"), f
    text = open(f"{d}/RESULTS.md").read()
    assert "enhance_udiffse" in text and "enhance_udiffse_plus" in text and "RTF" in text
    snr = _per_utt(f"{d}/dump/raw/test_noisy/utt2snr")
    noisy = _per_utt(f"{d}/exp/noisy/test_noisy/score/si_sdr")
    timing = {}
    for tag, nfe in (("enhance_udiffse", 2 * n * 2), ("enhance_udiffse_plus", n * 2),
                     ("enhance_udiffse_plus_fast", n), ("enhance_udiffse_plus_paper_noise", n * 2)):
        out = f"{prior}/{tag}/test_noisy"
        timing[tag] = json.load(open(f"{out}/timing.json"))
        assert timing[tag]["nfe"] == nfe and timing[tag]["rtf"] > 0
        assert set(_per_utt(f"{out}/score/si_sdr")) == set(noisy)
    enh = _per_utt(f"{prior}/enhance_udiffse/test_noisy/score/si_sdr")
    at0 = [k for k in noisy if snr[k] == 0]
    assert at0 and np.mean([enh[k] - noisy[k] for k in at0]) > 0, (enh, noisy)
    # a re-run finds everything done
    r = run_recipe(d, ["--stage", "5", "--stop_stage", "5", "--inference_args", infer], env)
    assert r.stderr.count("is complete") >= 2


def test_working_rate_reaches_every_stage(recipe, tmp_path):
    """``--fs 8000``: the corpus is simulated at its own rate (16 kHz), dumped at 8 kHz, and the
    lip encoder, the audio-visual prior and the enhancer all run at 8 kHz (a few steps each)."""
    d = recipe_copy(RECIPE, str(tmp_path / "fs8k"))
    env = recipe[1]
    args = ["--modality", "av", "--fs", "8000", "--stage", "1", "--stop_stage", "5",
            "--local_data_opts", "--size tiny --nj 2", "--test_sets", "test_noisy",
            "--lip_pretrain_args", "--max_steps 4 --log_interval 2", "--lip_rel_args", "--steps 4 --batch_size 4",
            "--train_args", "--max_steps 4 --ckpt_interval 4 --valid_interval 4 --log_interval 2",
            "--inference_config", "conf/enhance_av_udiffse_plus.yaml",
            "--inference_args", "--method_conf.n_steps 2 --method_conf.n_samples 1"]
    run_recipe(d, args, env)
    import soundfile as sf
    import torch

    assert "fs: 16000" in open(f"{d}/data/test_noisy/config.yaml").read()  # the corpus's own rate
    for dset in ("train", "test_noisy"):
        first = _lines(f"{d}/dump/raw/{dset}/wav.scp")[0].split()[1]
        assert sf.info(os.path.join(d, first)).samplerate == 8000
    assert torch.load(f"{d}/exp/train_av/model.pt", weights_only=False)["fs"] == 8000
    # beside the AV prior: its audio-only fallback prior (same rate) and the lip-reliability network
    assert torch.load(f"{d}/exp/train/model.pt", weights_only=False)["fs"] == 8000
    assert os.path.isfile(f"{d}/exp/lip_rel/model.pt")
    used = open(f"{d}/exp/train_av/enhance_av_udiffse_plus/test_noisy/config.yaml").read()
    assert "lip_fallback_model: exp/train/model.pt" in used and "lip_rel_model: exp/lip_rel/model.pt" in used
    out = f"{d}/exp/train_av/enhance_av_udiffse_plus/test_noisy"
    wavs = _lines(f"{out}/wav.scp")
    assert len(wavs) == len(_lines(f"{d}/dump/raw/test_noisy/wav.scp"))
    assert sf.info(os.path.join(d, wavs[0].split()[1])).samplerate == 8000


def test_vae_baseline_stages(recipe):
    """``--prior vae --modality av``: the AV-CVAE trains through stage 4 (after a few steps of
    lip-encoder pretraining), stage 5 enhances with both EM methods and the shuffled-lips
    control, stage 6 scores them (a few training steps: the wiring, not the quality)."""
    d, env = recipe
    run_recipe(d, ["--prior", "vae", "--modality", "av", "--stage", "4", "--stop_stage", "6",
                   "--test_sets", "test_noisy",   # the set it enhances: no re-scoring of the others' noisy rows
                   "--lip_pretrain_args", "--max_steps 4 --log_interval 2",
                   "--train_args", "--max_steps 20 --ckpt_interval 20 --valid_interval 20 --log_interval 10",
                   "--inference_args", "--method_conf.n_iter 3"], env)
    import torch

    m = torch.load(f"{d}/exp/train_av_vae/model.pt", weights_only=False)
    assert m["model"]["model"] == "vae" and m["model"]["model_conf"]["lip_encoder"] == "resnet_tcn"
    noisy = _per_utt(f"{d}/exp/noisy/test_noisy/score/si_sdr")
    for tag in ("enhance_vae_mcem", "enhance_vae_vem", "enhance_av_vae_mcem_shuffle"):
        out = f"{d}/exp/train_av_vae/{tag}/test_noisy"
        assert set(_per_utt(f"{out}/score/si_sdr")) == set(noisy)
        assert json.load(open(f"{out}/timing.json"))["rtf"] > 0
    assert "enhance_av_vae_mcem_shuffle" in open(f"{d}/RESULTS.md").read()


def test_noise_embed_stage_4_and_option_checks(recipe, tmp_path):
    """--noise_embed true: stage 4 trains the noise embedding (shortened) and measures
    retrieval, and trains the noise tracker on it, even with --skip_train; bad uses of the
    option fail clearly."""
    d, env = recipe
    r = run_recipe(d, ["--noise_embed", "bogus"], env, check=False)
    assert r.returncode == 2 and "--noise_embed must be" in r.stderr
    r = run_recipe(d, ["--noise_embed", "true", "--modality", "av"], env, check=False)
    assert r.returncode == 2 and "audio-only" in r.stderr
    run_recipe(d, ["--noise_embed", "true", "--stage", "4", "--stop_stage", "4", "--skip_train", "true",
                   "--noise_embed_args", "--steps 5 --decoder_steps 1 --text_per_type 20 --vocab_size 100",
                   "--noise_tracker_args", "--steps 2 --batch_size 2 --max_speech 3 --hidden 8 --blocks 2 "
                   "--embeds_per_type 2 --seconds 0.5"], env)
    assert os.path.isfile(os.path.join(d, "exp", "noise_embed", "model.pt"))
    with open(os.path.join(d, "exp", "noise_tracker", "config.yaml")) as f:   # conditioned on that embedding,
        conf = f.read()                                                          # trained on the larger noise set
    assert "exp/noise_embed/model.pt" in conf and "noise_dir: data/noise_train_many" in conf
    with open(os.path.join(d, "exp", "noise_embed", "retrieval.txt")) as f:
        assert "audio->text" in f.read()


def test_restore_av_scores_separated_talkers_as_bound_and_with_pit(tmp_path):
    """``--task restore --modality av``, stage 6 on an enhanced test_2spk made elsewhere (no
    corpus, no training): the separation of the AV prior (conf/enhance_av_separate.yaml under
    exp/train_av) is scored with output k against talker k (its sources.json says so), and
    permutation-invariantly as the row enhance_av_separate_pit."""
    import soundfile as sf

    from testutils import speechlike

    d = recipe_copy(RECIPE, str(tmp_path / "avse1"))
    data = tmp_path / "avse1" / "dump" / "raw" / "test_2spk"
    est = tmp_path / "avse1" / "exp" / "train_av" / "enhance_av_separate" / "test_2spk"
    for p in (data / "wav", est / "wav"):
        p.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = {n: [] for n in ("data/spk1.scp", "data/spk2.scp", "data/wav.scp", "est/spk1.scp", "est/spk2.scp")}
    for i, u in enumerate(["m0", "m1"]):
        a, b = speechlike(1.0, seed=i, f0=100.0), speechlike(1.0, seed=10 + i, f0=190.0)
        outs = [a + 0.02 * rng.standard_normal(a.size), b + 0.02 * rng.standard_normal(b.size)]
        if i == 1:   # the lips of m1 were misread: its talkers come out swapped
            outs = outs[::-1]
        for name, sig, folder in (("data/spk1.scp", a, data), ("data/spk2.scp", b, data),
                                  ("data/wav.scp", a + b, data), ("est/spk1.scp", outs[0], est),
                                  ("est/spk2.scp", outs[1], est)):
            p = folder / "wav" / f"{u}_{name.replace('/', '_')[:-4]}.wav"
            sf.write(str(p), (0.45 * sig).astype(np.float32), 16000, subtype="FLOAT")
            rows[name].append(f"{u} {p}\n")
    for name, r in rows.items():
        folder = data if name.startswith("data/") else est
        (folder / name.split("/")[1]).write_text("".join(r))
    (est / "wav.scp").write_text((est / "spk1.scp").read_text())
    (est / "sources.json").write_text(json.dumps({"n_sources": 2, "assignment": "fixed"}, indent=2))
    env = dict(os.environ, AVSE_PYTHON=sys.executable)
    run_recipe(d, ["--task", "restore", "--modality", "av", "--stage", "6", "--stop_stage", "6",
                   "--test_sets", "test_2spk", "--scoring_metrics", "si_sdr"], env)
    fixed = json.load(open(est / "score" / "meta.json"))
    pit = json.load(open(est / "pit" / "score" / "meta.json"))
    assert (fixed["system"], fixed["assignment"], fixed["n_sources"]) == ("enhance_av_separate", "fixed", 2)
    assert (pit["system"], pit["assignment"]) == ("enhance_av_separate_pit", "pit")
    si_fixed, si_pit = _per_utt(est / "score" / "si_sdr"), _per_utt(est / "pit" / "score" / "si_sdr")
    assert si_fixed["m0"] > 10 and si_fixed["m1"] < 0 and min(si_pit.values()) > 10
    text = open(f"{d}/RESULTS.md").read()
    assert "| enhance_av_separate |" in text and "| enhance_av_separate_pit |" in text
    assert "enhance_av_separate: 2 sources, fixed assignment" in text
