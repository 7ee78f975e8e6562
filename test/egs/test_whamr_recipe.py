"""egs/whamr/avse1 stages 1-3 on fake WSJ0 + WHAM! noise trees with official-format
room CSVs, as a user runs them (16 kHz, min only, to stay fast)."""
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
