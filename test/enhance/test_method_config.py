"""avse.enhance.method_config: method settings checked, completed and merged."""
import pytest

from avse.enhance.method_config import merge_settings, resolve_settings
from avse.enhance.udiffse import UDiffSEPlus
from avse.errors import InputError


def test_settings_are_checked_and_completed_with_defaults():
    s = resolve_settings({"method": "udiffse_plus", "method_conf": {"n_steps": 7, "noise_conf": {"bias": 2}},
                          "lip_guidance": 1.5, "lip_variance_temper": 2.0}, "x.yaml")
    assert s["method_conf"] == {**UDiffSEPlus.DEFAULTS, "n_steps": 7, "noise_conf": {"bias": 2}}
    assert s["lip_guidance"] == 1.5 and s["lip_variance_temper"] == 2.0
    for cfg, msg in [({"method": "nope"}, "x.yaml: method 'nope' is not one of"),
                     ({"method": "udiffse", "device": "cpu"}, r"x.yaml: keys \['device'\] are not method settings"),
                     ({"method": "udiffse", "method_conf": {"n_steps": 1}}, "x.yaml: method udiffse: .*n_steps >= 2"),
                     ({"method": "udiffse", "method_conf": {"typo": 1}}, "x.yaml: method udiffse: .*typo")]:
        with pytest.raises(InputError, match=msg):
            resolve_settings(cfg, "x.yaml")


def test_later_options_are_laid_over_recorded_ones():
    base = {"method": "udiffse_plus", "method_conf": {"n_steps": 30, "noise_conf": {"domain": "linear", "bias": 2}},
            "lip_guidance": 2.0}
    out = merge_settings(base, {"method_conf": {"noise_conf": {"bias": 3}}, "lip_guidance": None})
    assert out == {"method": "udiffse_plus", "method_conf": {"n_steps": 30, "noise_conf": {"domain": "linear", "bias": 3}},
                   "lip_guidance": 2.0}
    assert base["method_conf"]["noise_conf"]["bias"] == 2   # not changed in place


def test_t60_estimate_is_a_setting_with_known_values():
    ok = resolve_settings({"method": "udiffse_plus", "t60_estimate": "input"}, "c.yaml")
    assert ok["t60_estimate"] == "input"
    with pytest.raises(InputError, match="t60_estimate must be one of"):
        resolve_settings({"method": "udiffse_plus", "t60_estimate": "room"}, "c.yaml")
