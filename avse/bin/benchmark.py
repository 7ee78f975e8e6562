"""Speed benchmark of unsupervised enhancement: real-time factor and network calls/s.

    python -m avse.bin.benchmark [--presets tiny ncsnpp_28m ncsnpp_65m] [--seconds 5] \\
        [--devices cpu cuda] [--dtypes fp32 bf16] [--methods udiffse udiffse_plus] [--repeat 1] \\
        [--n_steps N] [--extrapolate_cpu ncsnpp_28m ncsnpp_65m] [--calls 2] \\
        [--configs egs/mini_av/avse1/conf/enhance_udiffse_plus.yaml ...] \\
        [--models egs/mini_av/avse1/exp/train/model.pt ...] [--layouts nhwc nchw]

A script, not a test: randomly initialised score models (no training), one synthetic
noisy utterance (harmonic, amplitude-modulated tone + white noise at 5 dB SNR), each
method with its default configuration (UDiffSE: 5 EM passes of 30 PC steps = 300
network calls; UDiffSE+: one pass = 60 calls; Nortier et al. ICASSP 2024, Ayilo et al.
ICASSP 2025), timed end to end (STFT, padding, sampling, NMF, inverse STFT). bf16 is
``torch.autocast`` around the network (on CPU too, here). CUDA is skipped when absent.
``--configs``: enhancement YAML files (``method`` + ``method_conf``, as given to
``avse.bin.enhance``) timed as further cases, named by their file stem; e.g. a
recipe's configuration rather than the paper's defaults.

``--models``: trained score models (``model.pt`` of ``avse.bin.train``) timed as further
rows beside the presets, with their own SDE and front-end. ``--layouts``: the memory
format of the 4-D weights, ``nhwc`` (channels last, what ``avse.nets.storage.load_model``
gives inference) and/or ``nchw``. Denormal floats are flushed to zero: a randomly
initialised network produces denormal activations that make CPU convolutions about 3x
slower (fast UDiffSE+ on the tiny preset: RTF 1.74 -> 0.53), which trained weights do not.

RTF = processing time / audio duration (below 1 is faster than real time).
Modes in the ``mode`` column:

* ``measured``: the whole method was run; RTF is measured.
* ``measured@N``: run with ``--n_steps N`` instead of the default; ``RTF`` is measured
  at N steps and ``RTF@default`` scales it linearly in steps (network calls scale
  linearly with steps), labelled *extrapolated*.
* ``extrapolated``: presets listed in ``--extrapolate_cpu`` on CPU (too slow to run in
  full): ``--calls`` network calls at the method's batch and shape are timed, and
  ``RTF = NFE_default / (NFE/s) / duration`` (network time only).
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch

DEFAULT_NFE = {"udiffse": lambda c: c.get("n_em", 5) * c.get("n_steps", 30) * (1 + c.get("n_corrector", 1)),
               "udiffse_plus": lambda c: c.get("n_steps", 30) * (1 + c.get("n_corrector", 1))}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="*", default=["tiny", "ncsnpp_28m", "ncsnpp_65m"],
                   help="architectures timed with random weights (none: only --models)")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    p.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--methods", nargs="*", default=["udiffse", "udiffse_plus"])
    p.add_argument("--configs", nargs="*", default=[],
                   help="enhancement YAML files (method + method_conf) timed as further cases")
    p.add_argument("--models", nargs="*", default=[], help="trained model files timed as further rows")
    p.add_argument("--layouts", nargs="+", default=["nhwc"], choices=["nhwc", "nchw"],
                   help="memory format of the 4-D weights (nhwc: channels last)")
    p.add_argument("--repeat", type=int, default=1, help="timed runs (the best is reported)")
    p.add_argument("--n_steps", type=int, default=None, help="reverse steps instead of the default")
    p.add_argument("--extrapolate_cpu", nargs="*", default=["ncsnpp_28m", "ncsnpp_65m"],
                   help="presets whose CPU RTF is extrapolated from timed network calls")
    p.add_argument("--calls", type=int, default=2, help="network calls timed in extrapolated mode")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    return p


def noisy_utterance(seconds: float, fs: int = 16000, snr_db: float = 5.0, seed: int = 0) -> np.ndarray:
    """A speech-like harmonic tone with syllable-rate modulation plus white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    phase = 2 * np.pi * np.cumsum(130 * (1 + 0.05 * np.sin(2 * np.pi * 0.6 * t))) / fs
    s = sum(np.sin(k * phase) / k for k in range(1, 15)) * np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
    n = rng.standard_normal(t.size)
    n *= np.sqrt(np.mean(s ** 2) / np.mean(n ** 2) / 10 ** (snr_db / 10))
    x = s + n
    return (0.9 * x / np.max(np.abs(x))).astype(np.float32)


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def run_case(model, sde, fe, x, method, conf, dev, dtype, args, extrapolate):
    from avse.enhance.base import ENHANCERS

    amp = dtype == "bf16"

    @torch.no_grad()
    def score_fn(xx, t):
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            s = model(xx, t)
        return s.to(torch.complex64)

    X, _ = fe.pad_frames(fe(torch.from_numpy(x).to(dev)))
    dur = len(x) / 16000
    full_nfe = DEFAULT_NFE.get(method, lambda c: math.nan)(conf)
    if extrapolate:
        b = int(conf.get("n_samples", 4))
        xb = X.unsqueeze(0).expand(b, *X.shape).contiguous()
        tt = torch.full((b,), 0.5, device=dev)
        score_fn(xb, tt)  # warm-up
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(args.calls):
            score_fn(xb, tt)
        sync(dev)
        nfe_s = args.calls / (time.perf_counter() - t0)
        return dict(nfe=full_nfe, nfe_s=nfe_s, rtf=full_nfe / nfe_s / dur, rtf_def=full_nfe / nfe_s / dur,
                    mode="extrapolated")
    if args.n_steps:
        conf = {**conf, "n_steps": args.n_steps}
    enh = ENHANCERS.build(method, **conf)
    score_fn(X.unsqueeze(0), torch.full((1,), 0.5, device=dev))  # warm-up (kernels, allocator)
    best = math.inf
    nfe = 0
    for r in range(args.repeat):
        gen = torch.Generator(device=dev).manual_seed(args.seed + r)
        sync(dev)
        t0 = time.perf_counter()
        S = enh(score_fn, sde, X, generator=gen, frontend=fe)
        fe.inverse(S, length=len(x))
        sync(dev)
        best = min(best, time.perf_counter() - t0)
        nfe = int(enh.last_stats.get("nfe", 0))
    rtf = best / dur
    scale = full_nfe / nfe if nfe and args.n_steps else 1.0
    return dict(nfe=nfe, nfe_s=nfe / best, rtf=rtf, rtf_def=rtf * scale,
                mode=f"measured@{args.n_steps}" if args.n_steps else "measured")


def config_case(path: str, enhancers) -> tuple[str, str, dict]:
    """``(name, method, conf)`` from an enhancement YAML: the method's defaults updated
    with the file's ``method_conf``; ``name`` is the file stem."""
    import os

    import yaml

    from avse.errors import InputError

    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    method = cfg.get("method")
    if method is None:
        raise InputError(f"{path}: no 'method' key")
    conf = dict(getattr(enhancers.get(method), "DEFAULTS", {}) or {})
    conf.update(cfg.get("method_conf") or {})
    return os.path.splitext(os.path.basename(path))[0], method, conf


def _models(args, sde):
    """``(label, model, sde, front-end or None)`` per preset (random weights) and per
    ``--models`` file (its own SDE and front-end), built one at a time."""
    from avse.nets.score_model import ScoreModel
    from avse.nets.storage import load_model

    for preset in args.presets:
        torch.manual_seed(args.seed)
        yield preset, ScoreModel.from_config("ncsnpp", {"preset": preset}, sde).eval(), sde, None
    for path in args.models:
        m = load_model(path)
        if m.sde is None:
            raise SystemExit(f"{path}: not a diffusion score model")
        if m.fs != 16000:
            raise SystemExit(f"{path}: the benchmark utterance is at 16 kHz, the model at {m.fs} Hz")
        yield os.path.basename(os.path.dirname(os.path.abspath(path))), m.model, m.sde, m.frontend


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    torch.set_flush_denormal(True)   # module docstring
    if args.threads:
        torch.set_num_threads(args.threads)
    from avse.diffusion.sde import SDES
    from avse.dsp.stft import SpectralFrontEnd
    from avse.enhance.base import ENHANCERS
    from avse.nets.storage import set_layout

    sde, fe = SDES.build("ouve"), SpectralFrontEnd()
    x = noisy_utterance(args.seconds, seed=args.seed)
    cases = [(m, m, dict(getattr(ENHANCERS.get(m), "DEFAULTS", {}) or {})) for m in args.methods]
    cases += [config_case(path, ENHANCERS) for path in args.configs]
    devices = [d for d in args.devices if d != "cuda" or torch.cuda.is_available()]
    skipped = sorted(set(args.devices) - set(devices))
    hdr = f"{'preset':<11} {'params':>7} {'method':<26} {'device':<6} {'layout':<6} {'dtype':<5} {'NFE':>5} " \
          f"{'NFE/s':>8} {'RTF':>9} {'RTF@default':>12}  mode"
    print(f"# {args.seconds:.1f} s synthetic noisy utterance, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads" + (f"; skipped (absent): {skipped}" if skipped else ""))
    print(hdr)
    print("-" * len(hdr))
    for label, model, sde_m, fe_m in _models(args, sde):
        n_par = sum(p.numel() for p in model.parameters()) / 1e6
        for layout in args.layouts:
            set_layout(model, channels_last=layout == "nhwc")
            for dev_name in devices:
                dev = torch.device(dev_name)
                model.to(dev)
                for name, method, conf in cases:
                    for dtype in args.dtypes:
                        extra = dev.type == "cpu" and label in (args.extrapolate_cpu or [])
                        r = run_case(model, sde_m, fe_m or fe, x, method, conf, dev, dtype, args, extra)
                        note = " (extrapolated)" if r["mode"] != "measured" else ""
                        print(f"{label:<11} {n_par:>6.1f}M {name:<26} {dev_name:<6} {layout:<6} {dtype:<5} "
                              f"{r['nfe']:>5} {r['nfe_s']:>8.2f} {r['rtf']:>9.3f} {r['rtf_def']:>12.3f}  "
                              f"{r['mode']}{note}", flush=True)
        model.cpu()
        del model
    print("RTF: processing time / audio duration; RTF@default: with the method's default steps "
          "(differs from RTF only when extrapolated). Extrapolated rows time network calls only.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
