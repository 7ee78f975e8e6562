"""Sample the unconditional clean-speech prior (a sanity check of what it learned).

    python -m avse.bin.generate --model exp/prior/model.pt --out_dir OUT --num 4 --seconds 2 \\
        [--n_steps 30] [--snr 0.5] [--seed 0] [--device cpu]

Draws ``num`` samples of ``seconds`` seconds with the predictor-corrector sampler
(Song et al., ICLR 2021) from ``x_T ~ N(0, sigma(1)^2)``: compressed spectrograms
``(num, F, T)`` (frames padded to the model's multiple, then cropped), inverted to
waveforms. Writes ``OUT/sample_XX.wav`` (32-bit float, in the peak-normalised scale
the model was trained on), ``OUT/wav.scp`` and ``OUT/spectrograms.png`` (log
magnitude of each sample, dB). A well-trained prior gives harmonic, speech-like
spectra with syllable-rate structure; an untrained one gives coloured noise.
"""
import argparse
import logging
import os
import sys

import numpy as np
import torch

from avse.utils.cli import run_main
from avse.errors import AvseError, InputError
from avse.io.audio import save_audio
from avse.io.scp import write_table
from avse.utils.config import str2bool
from avse.utils.device import resolve_device
from avse.utils.fileio import atomic_path

log = logging.getLogger("avse.generate")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model.pt written by avse.bin.train")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--num", type=int, default=4, help="number of samples")
    p.add_argument("--seconds", type=float, default=2.0, help="duration of each sample (s)")
    p.add_argument("--n_steps", type=int, default=30, help="reverse-diffusion steps")
    p.add_argument("--snr", type=float, default=0.5, help="corrector signal-to-noise ratio")
    p.add_argument("--n_corrector", type=int, default=1, help="Langevin corrector steps per step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--use_amp", type=str2bool, default=False, help="bf16 autocast of the network (CUDA and CPU)")
    p.add_argument("--verbose", type=int, default=1)
    return p


def plot_spectrograms(S: torch.Tensor, frontend, fs: int, path: str) -> None:
    """Log-magnitude (dB, decompressed) images of ``S`` (B, F, T), one panel per sample."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mag = frontend.decompress(S).abs().cpu().numpy()
    db = 20 * np.log10(np.maximum(mag, 1e-5))
    top = float(db.max())
    n = len(db)
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.2 * n), squeeze=False)
    dur = S.shape[-1] * frontend.hop / fs
    for i, ax in enumerate(axes[:, 0]):
        im = ax.imshow(db[i], origin="lower", aspect="auto", vmin=top - 80, vmax=top, cmap="magma",
                       extent=(0, dur, 0, fs / 2000))
        ax.set_ylabel("kHz")
        ax.set_title(f"sample {i}", fontsize=9)
    axes[-1, 0].set_xlabel("time (s)")
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="dB")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)


def run(args) -> None:
    from avse.diffusion.sampler import PCSampler
    from avse.nets.lip_cond import make_cond_score_fn
    from avse.nets.storage import load_model

    if args.num < 1 or args.seconds <= 0:
        raise InputError(f"need --num >= 1 and --seconds > 0, got {args.num}, {args.seconds}")
    dev = resolve_device(args.device)
    m = load_model(args.model, dev)
    fe = m.frontend
    n = int(round(args.seconds * m.fs))
    if n < fe.n_fft:
        raise InputError(f"--seconds {args.seconds}: shorter than one STFT frame")
    T = fe.n_frames(n)
    T_pad = T + (-T) % fe.pad_multiple
    gen = torch.Generator(device=dev).manual_seed(int(args.seed))
    sampler = PCSampler(m.sde, n_steps=args.n_steps, snr=args.snr, n_corrector=args.n_corrector)
    log.info("sampling %d x %.2f s (%d frames) with %d steps on %s", args.num, args.seconds, T,
             args.n_steps, dev)
    S = sampler.sample(make_cond_score_fn(m.model, dev, args.use_amp), (args.num, fe.n_freq, T_pad),
                       generator=gen, device=dev)
    S = fe.crop_frames(S, T)
    if not torch.isfinite(torch.view_as_real(S)).all():
        raise AvseError("the prior produced NaN or infinite values; the model is broken")
    y = fe.inverse(S, length=n).float().cpu().numpy()
    os.makedirs(args.out_dir, exist_ok=True)
    rows = {}
    for i, yi in enumerate(y):
        path = os.path.join(args.out_dir, f"sample_{i:02d}.wav")
        save_audio(path, yi, m.fs, subtype="FLOAT")
        rows[f"sample_{i:02d}"] = path
    write_table(os.path.join(args.out_dir, "wav.scp"), rows)
    plot_spectrograms(S, fe, m.fs, os.path.join(args.out_dir, "spectrograms.png"))
    log.info("wrote %d samples (%d network calls) and spectrograms.png to %s", args.num, sampler.nfe,
             args.out_dir)


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
