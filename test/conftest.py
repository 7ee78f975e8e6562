"""Shared fixtures: small generated audio, data dirs; no external data."""
import os
import sys

import numpy as np
import pytest
import soundfile as sf

from testutils import REPO, speechlike  # noqa: F401


@pytest.fixture
def make_wav(tmp_path):
    def _make(name: str, x: np.ndarray, fs: int = 16000) -> str:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(p), np.asarray(x).T if np.ndim(x) == 2 else x, fs, subtype="PCM_16")
        return str(p)
    return _make


@pytest.fixture
def tiny_data_dir(tmp_path, make_wav):
    """A valid 4-utterance, 2-speaker data dir with wav.scp/utt2spk/spk2utt/utt2dur/text."""
    d = tmp_path / "data"
    d.mkdir()
    rows = {}
    for i, (spk, n) in enumerate([("spkA", 1), ("spkA", 2), ("spkB", 1), ("spkB", 2)]):
        utt = f"{spk}_{n:03d}"
        rows[utt] = (spk, make_wav(f"wav/{utt}.wav", speechlike(0.8 + 0.1 * i, seed=i)), 0.8 + 0.1 * i)
    keys = sorted(rows)
    (d / "wav.scp").write_text("".join(f"{k} {rows[k][1]}\n" for k in keys))
    (d / "utt2spk").write_text("".join(f"{k} {rows[k][0]}\n" for k in keys))
    (d / "utt2dur").write_text("".join(f"{k} {rows[k][2]:.4f}\n" for k in keys))
    (d / "text").write_text("".join(f"{k} hello world {k}\n" for k in keys))
    (d / "spk2utt").write_text("spkA spkA_001 spkA_002\nspkB spkB_001 spkB_002\n")
    return str(d)


@pytest.fixture
def venv_env():
    """Environment for subprocesses running repo scripts with this interpreter."""
    env = dict(os.environ)
    env["AVSE_PYTHON"] = sys.executable
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def one_thread():
    """torch on one thread for the test (small tensors; stable timings and results)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
