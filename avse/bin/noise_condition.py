"""Per-utterance noise conditions for the embedding-conditioned noise model::

    python -m avse.bin.noise_condition --model exp/noise_embed/model.pt \\
        --data_dir dump/raw/test_noisy --out_dir dump/raw/test_noisy_cond \\
        [--modalities '[text, image, clip]'] [--noise_dir data/noise_test] [--seed 11] \\
        [--embed_scp feats.scp]

Copies the tables of ``--data_dir`` to ``--out_dir`` and adds, per utterance, a
condition of its noise type (``utt2noise``) in each modality and its embedding:

* ``text``: a fresh paraphrased description (:func:`avse.corpus.synthetic.noise_text.describe`)
  -> table ``noise_text``;
* ``image``: a scene picture rendered from ``--seed`` (not the training seed) -> ``noise_image.scp`` (PNG);
* ``clip``: a ``--clip_seconds`` noise-only crop of another recording of that type in
  ``--noise_dir`` than the one mixed into the utterance (``utt2source``'s second field)
  -> ``noise_clip.scp`` (WAV);
* ``ext``: features computed elsewhere, ``--embed_scp`` keyed by utterance.

and ``noise_embed_<modality>.scp`` (one ``.npy`` vector per utterance), which
``noise: embed_nmf`` with ``noise_conf.embed: <modality>`` reads
(:mod:`avse.enhance.embed_noise`). The embedding model is the same whatever the
modality: one trained with text alone conditions on a picture here.
"""
import argparse
import logging
import os
import shutil
import sys

import numpy as np

from avse.bin.prep_noise_embed import save_png
from avse.corpus.synthetic.noise_text import describe
from avse.corpus.synthetic.scenes import render_scene
from avse.data.datadir import DataDir
from avse.errors import InputError
from avse.io.audio import load_audio, save_audio
from avse.io.scp import read_table, write_table
from avse.nets.noise_embedder import NoiseEmbedder
from avse.utils.cli import run_main
from avse.utils.config import none_or, save_config, yaml_value
from avse.utils.seeding import utt_rng

log = logging.getLogger("avse.noise_condition")
MODALITIES = ("text", "image", "clip", "ext")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="noise-embedding model (avse.bin.train_noise_embed)")
    p.add_argument("--data_dir", required=True, help="input data dir with utt2noise")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--modalities", type=yaml_value, default=["text", "image", "clip"], help="YAML list")
    p.add_argument("--noise_dir", type=none_or(str), default=None, help="noise corpus for clips (wav.scp, utt2noise)")
    p.add_argument("--clip_seconds", type=float, default=2.0)
    p.add_argument("--embed_scp", type=none_or(str), default=None, help="external features per utterance (ext)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--verbose", type=int, default=1)
    return p


class Conditions:
    """Condition items and embeddings of one utterance per modality."""

    def __init__(self, args, emb: NoiseEmbedder):
        self.args, self.emb = args, emb
        self.noise = None
        if "clip" in args.modalities:
            if not args.noise_dir:
                raise InputError("modality clip needs --noise_dir (the noise recordings of the test set)")
            d = DataDir(args.noise_dir)
            self.noise_wav, self.noise_type = d.table("wav.scp"), d.table("utt2noise")
        self.ext = read_table(args.embed_scp) if "ext" in args.modalities else None
        if self.ext is not None and not args.embed_scp:
            raise InputError("modality ext needs --embed_scp")

    def clip(self, key: str, t: str, mixed: str | None, rng) -> np.ndarray:
        cands = sorted(k for k, v in self.noise_type.items() if v == t and k != mixed)
        if not cands:
            raise InputError(f"{key}: no recording of noise type {t!r} in {self.args.noise_dir} other than the "
                             f"one mixed ({mixed})")
        rec = cands[int(rng.integers(len(cands)))]
        x = load_audio(self.noise_wav[rec], self.emb.fs, utt=rec)[0]
        n = int(round(self.args.clip_seconds * self.emb.fs))
        x = np.tile(x, n // len(x) + 1) if len(x) < n else x
        a = int(rng.integers(0, len(x) - n + 1))
        return x[a:a + n]

    def item(self, m: str, key: str, t: str, mixed: str | None, item_dir: str):
        """``(table value, embedding input)`` of modality ``m``."""
        rng = utt_rng(self.args.seed, "noise_condition", m, key)
        if m == "text":
            s = describe(t, rng)
            return s, s
        if m == "image":
            img = render_scene(t, rng, int(self.emb.meta.get("image_size", 64)))
            path = os.path.join(item_dir, "image", f"{key}.png")
            save_png(path, img)
            return path, img
        if m == "clip":
            x = self.clip(key, t, mixed, rng)
            path = os.path.join(item_dir, "clip", f"{key}.wav")
            save_audio(path, x, self.emb.fs)
            return path, x
        if key not in self.ext:
            raise InputError(f"{self.args.embed_scp}: no entry for utterance {key!r}")
        return self.ext[key], np.load(self.ext[key]).astype(np.float32).reshape(-1)


def run(args) -> None:
    import torch

    torch.set_num_threads(1)
    mods = [args.modalities] if isinstance(args.modalities, str) else list(args.modalities or [])
    bad = [m for m in mods if m not in MODALITIES]
    if not mods or bad:
        raise InputError(f"--modalities must be a non-empty list of {MODALITIES}, got {args.modalities!r}")
    args.modalities = mods
    src = DataDir(args.data_dir)
    u2n = src.table("utt2noise")
    src_of = {k: v.split()[0] for k, v in read_table(src.file("utt2source")).items()} \
        if src.has("utt2source") else {}
    keys = src.keys
    missing = [k for k in keys if k not in u2n]
    if missing:
        raise InputError(f"{args.data_dir}/utt2noise: no noise type for {missing[:3]}")
    emb = NoiseEmbedder.load(args.model)
    cond = Conditions(args, emb)
    os.makedirs(args.out_dir, exist_ok=True)
    for name in os.listdir(args.data_dir):
        if os.path.isfile(src.file(name)) and not name.startswith("noise_embed_"):
            shutil.copyfile(src.file(name), os.path.join(args.out_dir, name))
    item_dir = os.path.abspath(os.path.join(args.out_dir, "cond"))
    table_name = {"text": "noise_text", "image": "noise_image.scp", "clip": "noise_clip.scp", "ext": None}
    for m in mods:
        values, inputs = {}, []
        for k in keys:
            v, x = cond.item(m, k, u2n[k], src_of.get(k), item_dir)
            values[k] = v
            inputs.append(x)
        e = emb.embed({"clip": "audio"}.get(m, m), inputs).cpu().numpy()
        scp = {}
        for k, v in zip(keys, e):
            path = os.path.join(item_dir, f"embed_{m}", f"{k}.npy")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            np.save(path, v.astype(np.float32))
            scp[k] = path
        if table_name[m]:
            write_table(os.path.join(args.out_dir, table_name[m]), values)
        write_table(os.path.join(args.out_dir, f"noise_embed_{m}.scp"), scp)
        log.info("%s: %d %s conditions", args.out_dir, len(keys), m)
    save_config(args, item_dir, "noise_condition.yaml")


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
