"""A data dir of noise items in three modalities, for noise-embedding retrieval::

    python -m avse.bin.prep_noise_embed --noise_dir data/noise_test --out_dir data/noise_embed_test \\
        --item_dir C/noise_embed_test [--per_type 20] [--clip_seconds 2] [--seed 7]

Per noise type of ``--noise_dir`` (``wav.scp`` + ``utt2noise``), ``--per_type`` items
``<type>_<i>``, each with a noise clip (a random ``--clip_seconds`` crop of a random
recording of that type, 16-bit WAV), a paraphrased description and a rendered scene
picture (PNG), drawn from ``utt_rng(seed, "noise_embed_item", key)``; use a seed other
than the training one. Writes ``noise.scp``, ``text``, ``image.scp``, ``utt2noise``.
"""
import argparse
import logging
import os
import sys

import numpy as np

from avse.corpus.synthetic.noise_text import describe
from avse.corpus.synthetic.scenes import render_scene
from avse.data.datadir import DataDir
from avse.errors import InputError
from avse.io.audio import load_audio, save_audio
from avse.io.scp import write_table
from avse.utils.cli import run_main
from avse.utils.seeding import utt_rng

log = logging.getLogger("avse.prep_noise_embed")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--noise_dir", required=True)
    p.add_argument("--out_dir", required=True)
    p.add_argument("--item_dir", required=True, help="where clips and pictures go")
    p.add_argument("--per_type", type=int, default=20)
    p.add_argument("--clip_seconds", type=float, default=2.0)
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--fs", type=int, default=16000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--verbose", type=int, default=1)
    return p


def save_png(path: str, img: np.ndarray) -> None:
    import cv2

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if not cv2.imwrite(path, np.ascontiguousarray(img[..., ::-1])):
        raise InputError(f"{path}: cannot write the picture")


def load_png(path: str) -> np.ndarray:
    """RGB ``uint8`` (H, W, 3)."""
    import cv2

    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: cannot read the picture")
    return img[..., ::-1].copy()


def run(args) -> None:
    if args.per_type < 1 or args.clip_seconds <= 0:
        raise InputError("--per_type must be >= 1 and --clip_seconds > 0")
    d = DataDir(args.noise_dir)
    wav, u2n = d.table("wav.scp"), d.table("utt2noise")
    by_type = {}
    for k in wav:
        by_type.setdefault(u2n[k], []).append(k)
    n = int(round(args.clip_seconds * args.fs))
    tables = {"noise.scp": {}, "text": {}, "image.scp": {}, "utt2noise": {}}
    cache = {}
    for t in sorted(by_type):
        for i in range(args.per_type):
            key = f"{t}_{i:03d}"
            rng = utt_rng(args.seed, "noise_embed_item", key)
            rec = by_type[t][int(rng.integers(len(by_type[t])))]
            if rec not in cache:
                cache[rec] = load_audio(wav[rec], args.fs, utt=rec)[0]
            x = cache[rec]
            x = np.tile(x, n // len(x) + 1) if len(x) < n else x
            a = int(rng.integers(0, len(x) - n + 1))
            clip = os.path.abspath(os.path.join(args.item_dir, "clip", f"{key}.wav"))
            save_audio(clip, x[a:a + n], args.fs)
            img = os.path.abspath(os.path.join(args.item_dir, "image", f"{key}.png"))
            save_png(img, render_scene(t, rng, args.image_size))
            tables["noise.scp"][key], tables["image.scp"][key] = clip, img
            tables["text"][key], tables["utt2noise"][key] = describe(t, rng), t
    os.makedirs(args.out_dir, exist_ok=True)
    for name, tab in tables.items():
        write_table(os.path.join(args.out_dir, name), tab)
    log.info("%s: %d items of %d types", args.out_dir, len(tables["utt2noise"]), len(by_type))


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
