"""mini_av audio-visual configs: valid for their commands, and AO/AV comparisons fair
(an AV config differs from its audio-only twin only in the audio-visual keys)."""
import glob
import os

import pytest
import yaml

from avse.bin import enhance, train, train_lip_encoder
from avse.utils.config import parse_args
from testutils import REPO

CONF = os.path.join(REPO, "egs", "mini_av", "avse1", "conf")
AV_TRAIN_KEYS = {"lip_encoder", "lip_encoder_conf", "lip_encoder_init", "freeze_lip_encoder", "lip_rel_source",
                 "visual_aug", "envelope_nll"}
AV_ENHANCE_KEYS = {"lip_rel_source", "lip_degrade", "lip_scp", "lip_rel_model", "lip_guidance", "lip_rel_guidance",
                   "lip_fallback_model", "lip_sources"}
LIPS_START = {"init", "t_start", "n_steps"}   # method_conf of a separation started from the lips


def _load(name):
    with open(os.path.join(CONF, name)) as f:
        return yaml.safe_load(f)


@pytest.mark.parametrize("name", sorted(os.path.basename(p) for p in glob.glob(os.path.join(CONF, "train_av*.yaml"))))
def test_av_train_configs_mirror_the_audio_only_one(name):
    """Diffusion AV priors mirror train.yaml, the AV-CVAE configs train_vae.yaml."""
    ao, av = _load("train_vae.yaml" if name.startswith("train_av_vae") else "train.yaml"), _load(name)
    assert {k: v for k, v in av.items() if k not in AV_TRAIN_KEYS | {"model_conf"}} == \
        {k: v for k, v in ao.items() if k != "model_conf"}
    visual = ("fusion", "fusion_conf", "lip_variance", "prior_hidden")
    assert {k: v for k, v in av["model_conf"].items() if k not in visual} == ao["model_conf"]
    args = parse_args(train.get_parser(), ["--config", os.path.join(CONF, name), "--train_dir", "d", "--out_dir", "o"])
    lip = parse_args(train_lip_encoder.get_parser(), ["--config", os.path.join(CONF, "lip_encoder.yaml"),
                                                      "--train_dir", "d", "--out_dir", "o"])
    assert args.lip_encoder == lip.lip_encoder and args.lip_encoder_conf == lip.lip_encoder_conf
    sync = parse_args(train_lip_encoder.get_parser(), ["--config", os.path.join(CONF, "lip_encoder_sync.yaml"),
                                                       "--train_dir", "d", "--out_dir", "o"])
    assert (lip.objective, sync.objective) == ("phones", "sync")
    assert sync.lip_encoder_conf == lip.lip_encoder_conf


@pytest.mark.parametrize("name", sorted(os.path.basename(p) for p in glob.glob(os.path.join(CONF, "enhance_av_*.yaml"))))
def test_av_enhance_configs_mirror_the_audio_only_ones(name):
    """Each AV config is its audio-only one plus the lip options; a separation may also
    start from the lips (init: lips, with its own t_start and n_steps), which an
    audio-only prior cannot."""
    method = next(m for m in ("udiffse_plus", "udiffse", "vae_mcem", "vae_vem", "separate", "joint", "cascade")
                  if f"enhance_av_{m}" in name)
    ao, av = _load(f"enhance_{method}.yaml"), _load(name)
    if method == "cascade":   # the AV separation row, then the room fit of each source (the buddy row)
        sep = _load("enhance_av_separate.yaml")
        assert av["method_conf"]["steps"] == [{"method": sep["method"], "method_conf": sep["method_conf"]},
                                              _load("enhance_buddy.yaml")]
        ao.pop("method_conf"), av.pop("method_conf")
    elif av["method_conf"].get("init") == "lips":
        assert method in ("separate", "joint")
        ao["method_conf"] = {k: v for k, v in ao["method_conf"].items() if k not in LIPS_START}
        av["method_conf"] = {k: v for k, v in av["method_conf"].items() if k not in LIPS_START}
    assert {k: v for k, v in av.items() if k not in AV_ENHANCE_KEYS} == ao
    args = parse_args(enhance.get_parser(), ["--config", os.path.join(CONF, name), "--model", "m", "--out_dir", "o"])
    degrade = name[len(f"enhance_av_{method}"):-len(".yaml")].lstrip("_") or "none"
    assert args.lip_degrade == degrade


@pytest.mark.parametrize("recipe", ["mini_av", "whamr"])
def test_cascade_configs_mirror_their_steps(recipe):
    """enhance_cascade.yaml = enhance_separate.yaml then enhance_buddy.yaml, same settings,
    so the cascade row compares methods, not tunings."""
    conf = os.path.join(REPO, "egs", recipe, "avse1", "conf")

    def load(name):
        with open(os.path.join(conf, name)) as f:
            return yaml.safe_load(f)

    steps = load("enhance_cascade.yaml")["method_conf"]["steps"]
    assert [{"method": s["method"], "method_conf": s["method_conf"]} for s in steps] == \
        [load("enhance_separate.yaml"), load("enhance_buddy.yaml")]


def test_denoise_then_wpe_config_mirrors_udiffse_plus():
    """enhance_udiffse_plus_wpe.yaml's first step is enhance_udiffse_plus.yaml as it is, so
    the two test_reverb rows differ by the WPE step alone; it resolves as a stage-5 config."""
    from avse.enhance.method_config import resolve_settings

    cfg = _load("enhance_udiffse_plus_wpe.yaml")
    first, second = cfg["method_conf"]["steps"]
    assert first == _load("enhance_udiffse_plus.yaml") and second["method"] == "wpe"
    resolve_settings(cfg, "enhance_udiffse_plus_wpe.yaml")
