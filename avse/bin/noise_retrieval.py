"""Cross-modal top-1 retrieval among noise types with the noise embedding::

    python -m avse.bin.noise_retrieval --model exp/noise_embed/model.pt \\
        --data_dir data/noise_embed_test [--embed_scp feats.scp] [--trials 20] [--out OUT.json]

``--data_dir`` (written by :mod:`avse.bin.prep_noise_embed`) holds items with
``utt2noise`` and any of ``noise.scp`` (clips: modality ``audio``), ``text``,
``image.scp`` (pictures) and ``embed.scp`` (external features, modality ``ext``; or
``--embed_scp``). For every ordered pair of modalities present, each query item
retrieves the nearest of one random item per type of the other modality
(:func:`avse.nets.noise_embedder.retrieval_top1`, ``--trials`` draws). Prints a table
and writes it as JSON to ``--out`` (default ``<model dir>/retrieval_<data dir name>.json``).
"""
import argparse
import json
import logging
import os
import sys

import numpy as np

from avse.bin.prep_noise_embed import load_png
from avse.data.datadir import DataDir
from avse.errors import InputError
from avse.io.audio import load_audio
from avse.io.scp import read_table
from avse.nets.noise_embedder import NoiseEmbedder, retrieval_top1
from avse.utils.cli import run_main
from avse.utils.config import none_or
from avse.utils.fileio import write_json
from avse.utils.seeding import utt_rng

log = logging.getLogger("avse.noise_retrieval")
TABLES = {"audio": "noise.scp", "text": "text", "image": "image.scp", "ext": "embed.scp"}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data_dir", required=True)
    p.add_argument("--embed_scp", type=none_or(str), default=None, help="external features (instead of embed.scp)")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=none_or(str), default=None)
    p.add_argument("--verbose", type=int, default=1)
    return p


def load_items(d: DataDir, modality: str, table: dict, fs: int):
    if modality == "audio":
        return [load_audio(v, fs, utt=k)[0] for k, v in table.items()]
    if modality == "image":
        return [load_png(v) for v in table.values()]
    if modality == "ext":
        return [np.load(v).astype(np.float32).reshape(-1) for v in table.values()]
    return list(table.values())


def embed_dir(emb: NoiseEmbedder, data_dir: str, embed_scp: str | None = None) -> dict:
    """``{modality: {type: (n, D) embeddings}}`` of the items of ``data_dir``."""
    d = DataDir(data_dir)
    u2n = d.table("utt2noise")
    out = {}
    for m, name in TABLES.items():
        path = embed_scp if (m == "ext" and embed_scp) else d.file(name)
        if not os.path.isfile(path) or (m == "ext" and emb.model.ext is None):
            continue
        table = read_table(path)
        bad = [k for k in table if k not in u2n]
        if bad:
            raise InputError(f"{path}: keys without a noise type in utt2noise: {bad[:3]}")
        e = emb.embed(m, load_items(d, m, table, emb.fs))
        out[m] = {}
        for k, v in zip(table, e):
            out[m].setdefault(u2n[k], []).append(v)
        out[m] = {t: np.stack([x.cpu().numpy() for x in v]) for t, v in out[m].items()}
    if len(out) < 2:
        raise InputError(f"{data_dir}: need items of at least two modalities ({', '.join(TABLES.values())})")
    return out


def run(args) -> None:
    import torch

    torch.set_num_threads(1)
    emb = NoiseEmbedder.load(args.model)
    e = embed_dir(emb, args.data_dir, args.embed_scp)
    res = {}
    for a in e:
        for b in e:
            if a != b:
                q = {t: torch.from_numpy(v) for t, v in e[a].items()}
                g = {t: torch.from_numpy(v) for t, v in e[b].items()}
                res[f"{a}->{b}"] = retrieval_top1(q, g, utt_rng(args.seed, "retrieval", a, b), args.trials)
    n_types = len(set.intersection(*(set(v) for v in e.values())))
    print(f"top-1 retrieval among {n_types} noise types ({args.data_dir})")
    for k, v in res.items():
        print(f"  {k:14s} {100 * v:6.1f} %")
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.model)),
                                   f"retrieval_{os.path.basename(os.path.normpath(args.data_dir))}.json")
    write_json(out, {"data_dir": args.data_dir, "n_types": n_types, "top1": res})


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
