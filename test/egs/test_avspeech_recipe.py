"""egs/avspeech/avse1 stages 1-3 on a fake AVSpeech tree (CSVs + clips, one clip missing,
one undecodable, one malformed line), as a user runs them; lips by the recipe's `box`
backend started at the CSV face centre of synthetic talking-face clips."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fake_corpora import make_avspeech
from testutils import REPO, recipe_copy, run_recipe

RECIPE = os.path.join(REPO, "egs", "avspeech", "avse1")


def base_env(**paths):
    env = {k: v for k, v in os.environ.items() if k not in ("AVSPEECH", "AVSPEECH_CLIPS")}
    return dict(env, AVSE_PYTHON=sys.executable, **paths)


def lines(path):
    with open(path) as f:
        return f.read().splitlines()


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("avspeech")
    names = make_avspeech(str(root))
    env = base_env(AVSPEECH=str(root), AVSPEECH_CLIPS=str(root / "clips"))
    d = recipe_copy(RECIPE, str(root / "avse1"))
    r = run_recipe(d, ["--stage", "1", "--stop_stage", "3", "--nj", "1", "--local_data_opts", "--nj 2 --valid_permille 400 --noise_seconds 2"], env)
    return d, env, names, r


def test_data_dirs_with_face_centres_and_a_report(recipe):
    d, env, names, r = recipe
    for s in ("avspeech_train", "avspeech_valid", "avspeech_test", "avspeech_test_sub", "noise_test", "test_noisy"):
        v = subprocess.run(["utils/validate_data_dir.sh", f"data/{s}"], cwd=d, env=env, capture_output=True, text=True)
        assert v.returncode == 0, v.stderr
    train = {l.split()[0] for s in ("avspeech_train", "avspeech_valid") for l in lines(f"{d}/data/{s}/wav.scp")}
    assert train == set(names["train"])
    face = dict(l.split(" ", 1) for l in lines(f"{d}/data/avspeech_train/utt2face") +
                lines(f"{d}/data/avspeech_valid/utt2face"))
    assert face["AbCdEfGh_-1_012.500000-013.500000"] == "0.4500 0.4100"
    summary = json.load(open(f"{d}/data/local/avspeech/report/summary.json"))
    assert (summary["missing"], summary["failed"], summary["bad"]) == (1, 1, 1)
    assert lines(f"{d}/data/local/avspeech/report/missing.txt")[0].split("\t")[0] == names["missing"][0]


def test_dump_carries_lips_and_face_centres(recipe):
    d, env, _, r = recipe
    assert "--lip_backend box" in r.stderr
    for s in ("avspeech_train", "test_noisy"):
        v = subprocess.run(["utils/validate_data_dir.sh", f"dump/raw/{s}"], cwd=d, env=env, capture_output=True, text=True)
        assert v.returncode == 0, v.stderr
        assert len(lines(f"{d}/dump/raw/{s}/lip.scp")) == len(lines(f"{d}/dump/raw/{s}/wav.scp"))
        assert len(lines(f"{d}/dump/raw/{s}/utt2face")) == len(lines(f"{d}/dump/raw/{s}/wav.scp"))
        conf = [np.load(os.path.join(d, l.split()[1])) for l in lines(f"{d}/dump/raw/{s}/lip_conf.scp")]
        assert np.mean([c.mean() for c in conf]) > 0.5  # the box found and followed the faces


def test_missing_db_paths_are_named(recipe, tmp_path):
    d, env, _, _ = recipe
    fresh = recipe_copy(RECIPE, str(tmp_path / "avse1"))
    r = run_recipe(fresh, ["--stage", "1", "--stop_stage", "1"], base_env(), check=False)
    assert r.returncode != 0 and "set AVSPEECH in db.sh" in r.stderr and "avspeech_train.csv" in r.stderr
    r = run_recipe(fresh, ["--stage", "1", "--stop_stage", "1"], base_env(AVSPEECH=env["AVSPEECH"]), check=False)
    assert r.returncode != 0 and "set AVSPEECH_CLIPS in db.sh" in r.stderr and "%010.6f" in r.stderr
