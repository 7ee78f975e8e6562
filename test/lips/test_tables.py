"""Lip tables of a dump dir and one utterance's lips: paths, reliability sources, errors."""
import subprocess
import sys

import numpy as np
import pytest

from avse.errors import InputError
from avse.lips.tables import lip_tables, load_lips


def _dump(tmp_path, n=6, rel=None):
    lips = np.full((n, 88, 88), 7, np.uint8)
    np.save(tmp_path / "u1_lips.npy", lips)
    (tmp_path / "lip.scp").write_text(f"u1 {tmp_path / 'u1_lips.npy'}\n")
    if rel is not None:
        np.save(tmp_path / "u1_conf.npy", np.asarray(rel, np.float32))
        (tmp_path / "lip_conf.scp").write_text(f"u1 {tmp_path / 'u1_conf.npy'}\n")
    return lips


def test_reliability_sources_and_values(tmp_path):
    _dump(tmp_path, rel=[0.5, np.nan, 2.0, -1.0, 1.0, 0.0])
    lips, rel = load_lips(*lip_tables(str(tmp_path), "conf")["u1"], key="u1")
    assert lips.shape == (6, 88, 88) and lips.dtype == np.uint8
    np.testing.assert_allclose(rel, [0.5, 0.0, 1.0, 0.0, 1.0, 0.0])  # NaN -> 0, clipped to [0, 1]
    _, ones = load_lips(*lip_tables(str(tmp_path), "none")["u1"])
    assert np.all(ones == 1)
    with pytest.raises(InputError, match="lip_rel.scp: not found"):
        lip_tables(str(tmp_path), "rel")
    with pytest.raises(InputError, match="must be one of"):
        lip_tables(str(tmp_path), "video")


def test_bad_lips_name_the_file(tmp_path):
    with pytest.raises(InputError, match="lip.scp: not found"):
        lip_tables(str(tmp_path))
    _dump(tmp_path, rel=[1.0, 1.0])
    with pytest.raises(InputError, match="2 values for 6 lip frames"):
        load_lips(*lip_tables(str(tmp_path), "conf")["u1"], key="u1")
    np.save(tmp_path / "u1_lips.npy", np.zeros((6, 88, 88), np.float32))
    with pytest.raises(InputError, match="expected \\(T, H, W\\) uint8"):
        load_lips(*lip_tables(str(tmp_path), "none")["u1"], key="u1")


def test_inference_imports_nothing_from_training():
    """Enhancement (commands, enhancers, model loading, lip conditioning) must not import
    avse.train: the layers run data -> nets -> enhance -> bin, never back up."""
    code = ("import sys, avse.bin.enhance, avse.bin.generate, avse.nets.storage, avse.nets.lip_cond, "
            "avse.enhance.udiffse, avse.enhance.posterior, avse.enhance.restoration; "
            "print(sorted(m for m in sys.modules if m.startswith('avse.train')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
