import argparse

import pytest

from avse.errors import InputError
from avse.utils.config import load_yaml, parse_args, save_config, str2bool, yaml_value


def _parser():
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--use_ema", type=str2bool, default=True)
    p.add_argument("--model", default="ncsnpp")
    p.add_argument("--model_conf", type=yaml_value, default={})
    return p


def test_precedence_defaults_yaml_cli(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lr: 0.001\nmodel_conf: {nf: 32, ch_mult: [1, 2]}\n")
    ns = parse_args(_parser(), ["--config", str(cfg)])
    assert ns.lr == 0.001 and ns.model_conf == {"nf": 32, "ch_mult": [1, 2]}
    ns = parse_args(_parser(), ["--config", str(cfg), "--lr", "0.5", "--model_conf.nf", "64",
                                "--model_conf.sub.x=[1, 2]"])
    assert ns.lr == 0.5 and ns.model_conf == {"nf": 64, "ch_mult": [1, 2], "sub": {"x": [1, 2]}}


def test_cli_mapping_is_laid_over_the_yaml_one(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model_conf: {nf: 32, ch_mult: [1, 2], sub: {a: 1, b: 2}}\n")
    ns = parse_args(_parser(), ["--config", str(cfg), "--model_conf", "{nf: 64, sub: {b: 3}}"])
    assert ns.model_conf == {"nf": 64, "ch_mult": [1, 2], "sub": {"a": 1, "b": 3}}
    ns = parse_args(_parser(), ["--config", str(cfg), "--model_conf={ch_mult: [4]}", "--model_conf.nf", "8"])
    assert ns.model_conf == {"nf": 8, "ch_mult": [4], "sub": {"a": 1, "b": 2}}
    assert parse_args(_parser(), ["--model_conf", "{nf: 8}"]).model_conf == {"nf": 8}


def test_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lrr: 1\n")
    with pytest.raises(InputError, match="unknown keys"):
        parse_args(_parser(), ["--config", str(bad)])
    with pytest.raises(InputError, match="unknown option --nope.x"):
        parse_args(_parser(), ["--nope.x", "1"])
    with pytest.raises(InputError, match="not a mapping"):
        parse_args(_parser(), ["--lr.x", "1"])
    with pytest.raises(SystemExit):
        parse_args(_parser(), ["--use_ema", "maybe"])
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(InputError, match="mapping"):
        load_yaml(str(tmp_path / "list.yaml"))


def test_save_resolved_config(tmp_path):
    ns = parse_args(_parser(), ["--lr", "0.2"])
    path = save_config(ns, str(tmp_path))
    assert load_yaml(path) == {"lr": 0.2, "use_ema": True, "model": "ncsnpp", "model_conf": {}}
