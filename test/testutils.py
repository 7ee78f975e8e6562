"""Helpers for tests (importable as ``testutils``; pytest.ini puts test/ on sys.path)."""
import os

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def speechlike(seconds: float = 1.0, fs: int = 16000, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A harmonic, amplitude-modulated tone with syllable-rate gaps (float32, peak 0.5)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f) / fs
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = np.clip(np.sin(2 * np.pi * 3.0 * t + rng.uniform(0, 6)), 0, None) ** 0.5
    x = x * env + 0.003 * rng.standard_normal(t.size)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def recipe_copy(recipe: str, dst: str) -> str:
    """A recipe dir ``dst`` whose files link to those of ``recipe`` (``egs/<corpus>/avse1``):
    run there, its outputs (data, dump, exp, RESULTS.md) land in ``dst``."""
    os.makedirs(dst, exist_ok=True)
    for name in os.listdir(recipe):
        if name not in ("data", "dump", "exp", "downloads", "RESULTS.md"):
            os.symlink(os.path.realpath(os.path.join(recipe, name)), os.path.join(dst, name))
    return dst


def run_recipe(d: str, args, env: dict, check: bool = True, timeout: int = 900):
    """``./run.sh ARGS`` in recipe dir ``d``; with ``check``, a failure raises with the
    end of its stderr."""
    import subprocess

    r = subprocess.run(["./run.sh", *args], cwd=d, env=env, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"run.sh {args} failed ({r.returncode}):\n{r.stderr[-4000:]}")
    return r


LISTEN_SNRS = {"spkA_u1": -5, "spkA_u2": 0, "spkA_u3": 5, "spkB_u1": -5, "spkB_u2": 0, "spkB_u3": 5}
LISTEN_METRICS = ["si_sdr", "estoi"]


def _write_scp(path, rows):
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(rows.items())))
    return str(path)


def scored_experiment(root):
    """A scored experiment in ``root`` (a recipe directory): ``data/`` (spk1.scp, wav.scp,
    utt2snr, utt2noise; :data:`LISTEN_SNRS`) and ``exp/`` with ``noisy`` and two systems
    (``prior/sysA``, ``prior/sysB``: the input with less noise) on test set ``tst``, scored by
    ``avse.bin.score`` (:data:`LISTEN_METRICS`); scp values of the systems relative to
    ``root``, as a recipe writes them. Returns ``root/exp``."""
    import soundfile as sf

    from avse.bin import score

    data, exp = root / "data", root / "exp"
    (data / "wav").mkdir(parents=True)
    rng = np.random.default_rng(0)
    ref, mix, outs = {}, {}, {"sysA": {}, "sysB": {}}
    for i, (u, snr) in enumerate(sorted(LISTEN_SNRS.items())):
        x = speechlike(1.2, seed=i, f0=110.0 + 15 * i)
        n = rng.standard_normal(x.size)
        n *= np.sqrt(np.mean(x ** 2) / np.mean(n ** 2) / 10 ** (snr / 10))
        for tab, sig, name in ((ref, x, "clean"), (mix, x + n, "noisy")):
            p = data / "wav" / f"{u}_{name}.wav"
            sf.write(str(p), (0.8 * sig / np.max(np.abs(sig))).astype(np.float32), 16000,
                     subtype="FLOAT")
            tab[u] = str(p)
        for s, g in (("sysA", 0.3), ("sysB", 0.6)):
            d = exp / "prior" / s / "tst" / "wav"
            d.mkdir(parents=True, exist_ok=True)
            sf.write(str(d / f"{u}.wav"), (0.2 * (x + g * n)).astype(np.float32), 16000)
            outs[s][u] = f"exp/prior/{s}/tst/wav/{u}.wav"
    _write_scp(data / "spk1.scp", ref)
    _write_scp(data / "utt2snr", LISTEN_SNRS)
    _write_scp(data / "utt2noise", {u: "white" for u in LISTEN_SNRS})
    common = ["--ref_scp", str(data / "spk1.scp"), "--data_dir", str(data), "--test_set", "tst",
              "--metrics", *LISTEN_METRICS]
    systems = [("noisy", _write_scp(data / "wav.scp", mix), exp / "noisy" / "tst" / "score")]
    for s in outs:
        d = exp / "prior" / s / "tst"
        systems.append((s, _write_scp(d / "wav.scp", outs[s]), d / "score"))
    cwd = os.getcwd()
    os.chdir(root)  # relative scp values, as the recipe writes them
    try:
        for name, inf, out in systems:
            assert score.main(common + ["--inf_scp", inf, "--system", name, "--out_dir", str(out)]) == 0
    finally:
        os.chdir(cwd)
    return exp


TINY_LIP = {"dim": 16, "front_channels": 4, "front_kernel": [3, 3, 3], "channels": [8], "input_pool": 4,
            "tcn_layers": 1}


def tiny_model(path: str, av: bool = False, fs: int = 16000, seed: int = 0, vae: bool = False) -> str:
    """An untrained tiny score model file at ``path`` (NCSN++ ``tiny``, ``nf: 8``; STFT 126/32;
    ``av``: a lip encoder with gated cross-attention; ``vae``: a frame-wise VAE prior on a
    linear STFT 128/32 instead): a real model file, in a fraction of a second, for tests of
    what loads and runs it."""
    import torch

    from avse.diffusion.sde import SDES
    from avse.dsp.stft import SpectralFrontEnd
    from avse.nets.score_model import ScoreModel
    from avse.nets.storage import export_model

    torch.manual_seed(seed)
    if vae:
        from avse.nets.vae import SpeechVAE
        fe = SpectralFrontEnd(n_fft=128, hop=32, window="sqrthann", alpha=1.0, beta=1.0, pad_multiple=1)
        model = SpeechVAE.from_config("vae", {"latent": 4, "hidden": 16, "n_freq": fe.n_freq})
        export_model(path, {"model": model.config, "sde": None, "frontend": fe.config(), "fs": fs},
                     model.state_dict())
        return path
    fe = SpectralFrontEnd(n_fft=126, hop=32)
    conf = {"preset": "tiny", "nf": 8, "ch_mult": [1, 2, 2]}
    if av:
        conf.update(lip_encoder="resnet_tcn", lip_encoder_conf=TINY_LIP, fusion="gated_xattn",
                    fusion_conf={"spec_fps": fs / fe.hop, "cond_fps": 25.0})
    model = ScoreModel.from_config("ncsnpp", conf, SDES.build("ouve"))
    export_model(path, {"model": model.config, "sde": {"name": "ouve", "conf": {}}, "frontend": fe.config(),
                        "fs": fs}, model.state_dict(), 0, {"lip_rel_source": "conf"} if av else {})
    return path
