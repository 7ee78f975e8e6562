"""egs/whamr/avse1 stages 1-3 on fake WSJ0 + WHAM! noise trees with official-format
room CSVs, as a user runs them (16 kHz, min only, to stay fast)."""
import json
import os
import subprocess
import sys

import pytest

from avse.data.datadir import DataDir
from fake_corpora import make_reverb_params, make_wham_noise, make_wsj0
from testutils import REPO, recipe_copy, run_recipe

RECIPE = os.path.join(REPO, "egs", "whamr", "avse1")


def base_env(**paths):
    env = {k: v for k, v in os.environ.items() if k not in ("WSJ0", "WHAM_NOISE", "WHAMR_PARAMS", "WHAMR_OUT")}
    return dict(env, AVSE_PYTHON=sys.executable, **paths)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("whamr")
    make_wsj0(str(root / "wsj0_wav"))
    mixes = make_wham_noise(str(root / "wham_noise"))
    for s, names in mixes.items():
        make_reverb_params(str(root / "params" / f"reverb_params_{s}.csv"), names)
    env = base_env(WSJ0=str(root / "wsj0_wav"), WHAM_NOISE=str(root / "wham_noise"), WHAMR_PARAMS=str(root / "params"))
    d = recipe_copy(RECIPE, str(root / "avse1"))
    run_recipe(d, ["--stage", "1", "--stop_stage", "3", "--nj", "1",
            "--local_data_opts", "--nj 2 --sample_rates [16k] --lengths [min]"], env)
    return d, env, mixes


def test_data_dirs_named_as_espnet_with_their_tables(recipe):
    d, env, mixes = recipe
    names = sorted(n for n in os.listdir(f"{d}/data") if "_mix_" in n)
    assert names == sorted(f"{s}_mix_{m}_{c}_min_16k" for s in ("tr", "cv", "tt")
                           for m in ("single", "both", "clean") for c in ("anechoic", "reverb"))
    tables = {n: set(DataDir(f"{d}/data/{n}").utt_tables()) for n in names}
    assert {"spk1.scp", "spk2.scp", "noise1.scp", "dereverb1.scp", "dereverb2.scp"} <= tables["tt_mix_both_reverb_min_16k"]
    assert "spk2.scp" not in tables["tr_mix_single_reverb_min_16k"]
    assert "noise1.scp" not in tables["cv_mix_clean_anechoic_min_16k"]
    assert "dereverb1.scp" not in tables["tt_mix_single_anechoic_min_16k"]
    tt = DataDir(f"{d}/data/tt_mix_both_reverb_min_16k")
    assert tt.keys == sorted(mixes["tt"])
    assert all(v.split()[0] == "0.150" for v in tt.table("utt2t60").values())  # the official rooms' T60
    assert tt.table("dereverb1.scp")[mixes["tt"][0]].endswith(f"wav16k/min/tt/s1_anechoic/{mixes['tt'][0]}.wav")


def test_clean_wsj0_sets_and_dump(recipe):
    d, env, _ = recipe
    assert sorted(DataDir(f"{d}/data/si_tr_s").table("spk2utt")) == ["01a", "02b", "03c"]
    for s in ("si_tr_s", "si_dt_05", "tt_mix_single_reverb_min_16k", "tt_mix_both_reverb_min_16k"):
        r = subprocess.run(["utils/validate_data_dir.sh", f"dump/raw/{s}"], cwd=d, env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    assert not os.path.exists(f"{d}/dump/raw/si_tr_s/lip.scp")


def test_rerun_is_complete_and_missing_paths_are_named(recipe, tmp_path):
    d, env, _ = recipe
    r = run_recipe(d, ["--stage", "1", "--stop_stage", "1", "--local_data_opts", "--nj 2 --sample_rates [16k] --lengths [min]"], env)
    assert "is complete, skipping" in r.stderr
    fresh = recipe_copy(RECIPE, str(tmp_path / "avse1"))
    r = run_recipe(fresh, ["--stage", "1", "--stop_stage", "1"], base_env(WHAM_NOISE=env["WHAM_NOISE"]), check=False)
    assert r.returncode != 0 and "set WSJ0 in db.sh" in r.stderr and "si_tr_s/<spk>/<utt>.wav" in r.stderr
    r = run_recipe(fresh, ["--stage", "1", "--stop_stage", "1"], base_env(WSJ0=env["WSJ0"]), check=False)
    assert r.returncode != 0 and "set WHAM_NOISE in db.sh" in r.stderr and "mix_param_meta" in r.stderr


def _shrink(conf):
    """A recipe config made tiny: few diffusion steps and room updates, one sample."""
    if isinstance(conf, dict):
        small = {"n_steps": 2, "room_updates": 1, "n_samples": 1, "n_corrector": 0}
        return {k: small[k] if k in small else _shrink(v) for k, v in conf.items()}
    if isinstance(conf, list):
        return [_shrink(v) for v in conf]
    return conf


def test_stages_4_to_6_run_each_task_on_its_set(recipe):
    """The recipe's own CONFIG:SET mapping, with its configs shrunk (a 2-step tiny prior,
    2 diffusion steps): every task's rows land in RESULTS.md, reverberant sets are scored
    against the dry sources and two-talker ones with PIT."""
    import yaml

    d, env, mixes = recipe
    os.unlink(f"{d}/conf")
    os.makedirs(f"{d}/conf")
    for name in os.listdir(f"{RECIPE}/conf"):
        if name.endswith(".yaml"):
            with open(f"{RECIPE}/conf/{name}") as f:
                conf = _shrink(yaml.safe_load(f))
            if name == "train.yaml":
                conf.update(model_conf={"preset": "tiny"}, max_steps=2, batch_size=2, crop_frames=32,
                            use_amp=False, num_workers=0, warmup_steps=0, valid_interval=2, ckpt_interval=2)
            with open(f"{d}/conf/{name}", "w") as f:
                yaml.safe_dump(conf, f)
    run_recipe(d, ["--stage", "4", "--stop_stage", "6", "--ngpu", "0", "--gpu_inference", "false",
                   "--inference_nj", "1", "--nj", "1"], env)
    exp = f"{d}/exp/train"
    done = {(m, s) for m in os.listdir(exp) if m.startswith("enhance_") for s in os.listdir(f"{exp}/{m}")}
    assert done == {("enhance_udiffse_plus", "tt_mix_single_anechoic_min_16k"),
                    ("enhance_buddy", "tt_mix_single_reverb_min_16k"),
                    ("enhance_separate", "tt_mix_clean_anechoic_min_16k"),
                    ("enhance_joint", "tt_mix_both_reverb_min_16k"),
                    ("enhance_cascade", "tt_mix_both_reverb_min_16k")}
    def refs(m, s):
        with open(f"{exp}/{m}/{s}/score/meta.json") as f:
            return [os.path.basename(p) for p in json.load(f)["ref_scp"]]

    assert refs("enhance_cascade", "tt_mix_both_reverb_min_16k") == ["dereverb1.scp", "dereverb2.scp"]
    assert refs("enhance_buddy", "tt_mix_single_reverb_min_16k") == ["dereverb1.scp"]
    assert refs("enhance_separate", "tt_mix_clean_anechoic_min_16k") == ["spk1.scp", "spk2.scp"]
    for m in ("enhance_buddy", "enhance_cascade"):
        s = "tt_mix_single_reverb_min_16k" if m == "enhance_buddy" else "tt_mix_both_reverb_min_16k"
        est = DataDir(f"{exp}/{m}/{s}").table("utt2t60_est")
        assert sorted(est) == sorted(mixes["tt"]) and all(0.05 <= float(v) <= 2.0 for v in est.values())
    results = open(f"{d}/RESULTS.md").read()
    for m in ("enhance_udiffse_plus", "enhance_buddy", "enhance_separate", "enhance_joint", "enhance_cascade"):
        assert f"| {m} |" in results
