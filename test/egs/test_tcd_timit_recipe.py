"""egs/tcd_timit/avse1 stages 1-3 on a fake TCD-TIMIT tree (+ NTCD-TIMIT, DEMAND), as a
user runs them: lips by the recipe's `haar` backend on synthetic talking-face clips, or
`none` on pre-cropped mouth videos."""
import os
import subprocess
import sys

import numpy as np
import pytest

from fake_corpora import TCD_SPEAKERS, TCD_UTTS, make_demand, make_ntcd_timit, make_tcd_lips, make_tcd_timit
from testutils import REPO, recipe_copy, run_recipe

RECIPE = os.path.join(REPO, "egs", "tcd_timit", "avse1")


def lines(path):
    with open(path) as f:
        return f.read().splitlines()


def base_env(**paths):
    env = {k: v for k, v in os.environ.items() if k not in ("TCD_TIMIT", "TCD_TIMIT_LIPS", "NTCD_TIMIT", "DEMAND")}
    return dict(env, AVSE_PYTHON=sys.executable, **paths)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    root = tmp_path_factory.mktemp("tcd_full")
    make_tcd_timit(str(root / "TCDTIMIT"))
    make_ntcd_timit(str(root / "NTCD"), noises=("Babble",))
    make_demand(str(root / "DEMAND"), seconds=2.0)
    env = base_env(TCD_TIMIT=str(root / "TCDTIMIT"), NTCD_TIMIT=str(root / "NTCD"), DEMAND=str(root / "DEMAND"))
    d = recipe_copy(RECIPE, str(root / "avse1"))
    r = run_recipe(d, ["--stage", "1", "--stop_stage", "3", "--nj", "1", "--local_data_opts", "--nj 2"], env)
    return d, env, r


def validate(d, env, name):
    r = subprocess.run(["utils/validate_data_dir.sh", name], cwd=d, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_speaker_split_and_tables(full):
    d, env, _ = full
    for s in ("train", "valid", "test"):
        validate(d, env, f"data/{s}")
        spk = {l.split()[1] for l in lines(f"{d}/data/{s}/utt2spk")}
        assert spk == {k for k, v in TCD_SPEAKERS.items() if v == s}
        assert len(lines(f"{d}/data/{s}/video.scp")) == len(spk) * len(TCD_UTTS)
    wav = dict(l.split() for l in lines(f"{d}/data/train/wav.scp"))
    assert wav["01M_sa1"].endswith("data/local/tcd_timit/wav/01M_sa1.wav")  # decoded from the mp4
    assert wav["01M_sx12"].endswith("volunteers/01M/audio/sx12.wav")       # the corpus wav


def test_ntcd_and_demand_test_sets(full):
    d, env, r = full
    assert "--test_sets test_ntcd test_demand" in r.stderr and "--lip_backend haar" in r.stderr
    for s in ("test_ntcd", "test_demand", "noise_demand"):
        validate(d, env, f"data/{s}")
    ntcd = lines(f"{d}/data/test_ntcd/utt2noise")
    assert len(ntcd) == 2 * len(TCD_UTTS) * 2 and {l.split()[1] for l in ntcd} == {"babble"}
    spk1 = dict(l.split() for l in lines(f"{d}/data/test_ntcd/spk1.scp"))
    assert all("/NTCD/Clean/" in v for v in spk1.values())
    demand = dict(l.split() for l in lines(f"{d}/data/test_demand/utt2noise"))
    assert len(demand) == 2 * len(TCD_UTTS) * 2  # every test_sub utterance at -5 and +5 dB
    assert set(demand.values()) <= {"TMETRO", "OOFFICE", "TBUS", "STRAFFIC", "SPSQUARE"}
    assert {l.split()[1] for l in lines(f"{d}/data/test_demand/utt2snr")} == {"-5", "5"}


def test_dump_has_lips_for_every_test_utterance(full):
    d, env, _ = full
    for s in ("train", "test_ntcd", "test_demand"):
        validate(d, env, f"dump/raw/{s}")
        assert len(lines(f"{d}/dump/raw/{s}/lip.scp")) == len(lines(f"{d}/dump/raw/{s}/wav.scp"))
        conf = [np.load(os.path.join(d, l.split()[1])) for l in lines(f"{d}/dump/raw/{s}/lip_conf.scp")]
        assert np.mean([c.mean() for c in conf]) > 0.5  # the Haar cascade found the faces


def test_without_ntcd_and_demand_uses_toolkit_noise_and_mouth_videos(tmp_path):
    make_tcd_timit(str(tmp_path / "T"), with_wav=False)
    make_tcd_lips(str(tmp_path / "L"), [f"{s}_{u}" for s in TCD_SPEAKERS for u in TCD_UTTS])
    env = base_env(TCD_TIMIT=str(tmp_path / "T"), TCD_TIMIT_LIPS=str(tmp_path / "L"))
    d = recipe_copy(RECIPE, str(tmp_path / "avse1"))
    r = run_recipe(d, ["--stage", "1", "--stop_stage", "2", "--nj", "1",
                "--local_data_opts", "--nj 1 --noise_seconds 2 --subset_per_speaker 1"], env)
    assert "--test_sets test_noisy" in r.stderr and "--lip_backend none" in r.stderr
    validate(d, env, "data/test_noisy")
    assert len(lines(f"{d}/data/test_noisy/wav.scp")) == 2 * 1 * 3  # 2 speakers x 1 utt x 3 SNRs
    assert all(v.split()[1].startswith(str(tmp_path / "L")) for v in lines(f"{d}/data/test/video.scp"))


def test_missing_db_path_says_which_variable(tmp_path):
    d = recipe_copy(RECIPE, str(tmp_path / "avse1"))
    r = run_recipe(d, ["--stage", "1", "--stop_stage", "1"], base_env(), check=False)
    assert r.returncode != 0 and "set TCD_TIMIT in db.sh" in r.stderr and "Clips/straightcam" in r.stderr
    r = run_recipe(d, ["--stage", "1", "--stop_stage", "1"], base_env(TCD_TIMIT=str(tmp_path)), check=False)
    assert r.returncode != 0 and "has no volunteers/ folder" in r.stderr


def test_lip_input_configs_mirror_train_av():
    """conf/train_av_lrw.yaml (a released lip-reading front-end) and train_av_feats.yaml
    (precomputed visual features) parse with avse.bin.train, build their encoders and
    differ from train_av.yaml only in the lip keys."""
    import yaml

    from avse.bin import train
    from avse.nets.lip_encoder import build_lip_encoder, encoder_input, lip_table
    from avse.utils.config import parse_args

    conf = os.path.join(RECIPE, "conf")
    lip_keys = {"lip_encoder", "lip_encoder_conf", "lip_encoder_init", "lip_encoder_init_format",
                "freeze_lip_encoder", "lip_table", "lip_rel_source", "visual_aug"}
    with open(f"{conf}/train_av.yaml") as f:
        base = yaml.safe_load(f)
    for name, encoder, kind in (("train_av_lrw", "resnet18_tcn", "crops"), ("train_av_feats", "features", "features")):
        with open(f"{conf}/{name}.yaml") as f:
            raw = yaml.safe_load(f)
        assert {k: v for k, v in raw.items() if k not in lip_keys} == \
            {k: v for k, v in base.items() if k not in lip_keys}, name
        a = parse_args(train.get_parser(), ["--config", f"{conf}/{name}.yaml", "--train_dir", "x", "--out_dir", "y"])
        enc = build_lip_encoder(a.lip_encoder, a.lip_encoder_conf)
        assert a.lip_encoder == encoder and encoder_input(encoder) == kind and enc.dim == 512
    lrw = parse_args(train.get_parser(), ["--config", f"{conf}/train_av_lrw.yaml", "--train_dir", "x", "--out_dir", "y"])
    assert lrw.freeze_lip_encoder and lrw.lip_encoder_init_format == "auto" and lrw.lip_encoder_init
    feats = parse_args(train.get_parser(), ["--config", f"{conf}/train_av_feats.yaml", "--train_dir", "x",
                                            "--out_dir", "y"])
    assert lip_table(feats.lip_encoder, feats.lip_table) == "lip_feats.scp" and feats.visual_aug["p_occlude"] == 0


def test_configs_are_the_published_models():
    """The recipe's YAMLs parse with the commands that read them and name the published
    architectures: 65 M NCSN++ (audio-only), 28 M NCSN++ + xattn + lip encoder (AV)."""
    from avse.bin import enhance, train
    from avse.nets import FUSIONS, PRESETS
    from avse.nets.lip_encoder import LIP_ENCODERS
    from avse.utils.config import parse_args

    conf = os.path.join(RECIPE, "conf")
    ao = parse_args(train.get_parser(), ["--config", f"{conf}/train_ao.yaml", "--train_dir", "x", "--out_dir", "y"])
    av = parse_args(train.get_parser(), ["--config", f"{conf}/train_av.yaml", "--train_dir", "x", "--out_dir", "y"])
    assert ao.model_conf["preset"] == "ncsnpp_65m" and ao.lip_encoder is None
    assert av.model_conf["preset"] == "ncsnpp_28m" and av.model_conf["fusion"] == "xattn"
    assert "ncsnpp_65m" in PRESETS and "xattn" in FUSIONS.names()
    assert LIP_ENCODERS.build(av.lip_encoder, **av.lip_encoder_conf).config["dim"] == 512
    for name, method, nfe in (("enhance_udiffse", "udiffse", 300), ("enhance_udiffse_plus", "udiffse_plus", 60)):
        e = parse_args(enhance.get_parser(), ["--config", f"{conf}/{name}.yaml", "--model", "m", "--data_dir", "d",
                                              "--out_dir", "o"])
        c = e.method_conf
        assert e.method == method and c["n_steps"] == 30 and c["lam"] == 1.5 and c["lik_period"] == 2
        assert c.get("n_em", 1) * c["n_steps"] * (1 + c["n_corrector"]) == nfe
