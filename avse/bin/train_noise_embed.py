"""Train the contrastive noise embedding (noise audio, scene text, scene pictures) and its
NMF-basis decoder::

    python -m avse.bin.train_noise_embed --config conf/noise_embed.yaml \\
        --noise_dir data/noise_train --out_dir exp/noise_embed \\
        [--embed_scp feats.scp [--embed_utt2noise labels]] [--steps N] [--seed S] \\
        [--speech_dir data/train --decoder_disc_steps N [--decoder_snr "[-5, 5]"] [--decoder_clip 3]]

CLIP / CLAP-style symmetric InfoNCE between the modalities (Radford et al. 2021;
Elizalde et al. 2023); see :mod:`avse.train.noise_embed` for the phases (the third,
``--decoder_disc_steps``, fine-tunes the basis decoder discriminatively against clean
speech of ``--speech_dir``). The audio comes from the noise data dir (``wav.scp`` +
``utt2noise``); text and pictures are generated per noise type (:mod:`avse.corpus.synthetic.noise_text`,
:mod:`avse.corpus.synthetic.scenes`); the sentencepiece tokenizer is trained first on
``text_per_type`` paraphrases per type plus the data dir's ``noise_desc``.

Real corpora: ``--embed_scp`` lists features computed elsewhere (e.g. CLIP image or
CLAP audio embeddings, one ``.npy`` vector per line), labelled by ``--embed_utt2noise``
(default: the noise dir's ``utt2noise``); they get their own encoder into the shared
space, trained against text and audio.

Writes ``OUT/model.pt`` (network, tokenizer, settings: :func:`avse.nets.noise_embedder.save_noise_embed`),
``OUT/train_log.csv`` and the resolved ``OUT/config.yaml``.
"""
import argparse
import logging
import os
import sys

import numpy as np
import torch

from avse.corpus.synthetic.noise_text import corpus
from avse.data.datadir import DataDir, spread_keys
from avse.errors import InputError
from avse.io.audio import load_audio
from avse.io.scp import read_table
from avse.nets.noise_embed import MODALITIES, NoiseEmbedModel
from avse.nets.noise_embedder import save_noise_embed
from avse.nets.noise_tokenizer import Tokenizer
from avse.train.noise_embed import NoiseItems, train
from avse.utils.cli import run_main
from avse.utils.config import none_or, save_config, yaml_value
from avse.utils.fileio import write_csv_rows
from avse.utils.seeding import utt_rng

log = logging.getLogger("avse.train_noise_embed")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--noise_dir", required=True, help="noise data dir (wav.scp, utt2noise)")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--fs", type=int, default=16000)
    p.add_argument("--dim", type=int, default=64, help="embedding dimension")
    p.add_argument("--hidden", type=int, default=128, help="hidden width of the encoders")
    p.add_argument("--vocab_size", type=int, default=400, help="sentencepiece vocabulary (at most)")
    p.add_argument("--text_per_type", type=int, default=300, help="paraphrases per type for the tokenizer")
    p.add_argument("--image_size", type=int, default=64, help="scene pictures are image_size^2 pixels")
    p.add_argument("--clip_seconds", type=float, default=2.0, help="noise crops (s)")
    p.add_argument("--steps", type=int, default=1500, help="contrastive steps")
    p.add_argument("--decoder_steps", type=int, default=600, help="basis-decoder steps")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--decoder_modality", default="text", choices=list(MODALITIES),
                   help="embeddings the basis decoder is trained on")
    p.add_argument("--decoder_n_fft", type=int, default=510, help="STFT of the bases (the prior's front-end)")
    p.add_argument("--decoder_hop", type=int, default=128)
    p.add_argument("--decoder_rank", type=int, default=8, help="NMF bases per embedding")
    p.add_argument("--decoder_h_iters", type=int, default=10, help="unrolled activation updates")
    p.add_argument("--decoder_disc_steps", type=int, default=0,
                   help="then fine-tune the decoder discriminatively: activations fitted to noise plus "
                        "--speech_dir speech, loss on the noise alone (avse.train.noise_embed)")
    p.add_argument("--speech_dir", type=none_or(str), default=None,
                   help="clean training speech (data dir) for --decoder_disc_steps")
    p.add_argument("--max_speech", type=int, default=200,
                   help="utterances read from --speech_dir, evenly spaced over its sorted list")
    p.add_argument("--decoder_snr", type=yaml_value, default=[-5.0, 5.0],
                   help="YAML [low, high]: SNR range (dB) of the speech added for the decoder")
    p.add_argument("--decoder_clip", type=none_or(float), default=None,
                   help="robust activation updates in the discriminative fit (the noise model's clip)")
    p.add_argument("--embed_scp", type=none_or(str), default=None, help="external features (.npy per line)")
    p.add_argument("--embed_utt2noise", type=none_or(str), default=None,
                   help="noise type of each --embed_scp key (default: the noise dir's utt2noise)")
    p.add_argument("--init_model", type=none_or(str), default=None,
                   help="start from this noise-embedding model (its tokenizer and every tensor of matching "
                        "shape: e.g. --steps 0 to retrain only the basis decoder with another rank)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num_threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--verbose", type=int, default=1)
    return p


def load_items(args) -> NoiseItems:
    d = DataDir(args.noise_dir)
    wav, u2n = d.table("wav.scp"), d.table("utt2noise")
    audio = {}
    for k, path in wav.items():
        if k not in u2n:
            raise InputError(f"{args.noise_dir}/utt2noise: no entry for {k!r}")
        audio.setdefault(u2n[k], []).append(load_audio(path, args.fs, utt=k)[0].astype(np.float32))
    ext = None
    if args.embed_scp:
        labels = read_table(args.embed_utt2noise) if args.embed_utt2noise else u2n
        ext = {}
        for k, path in read_table(args.embed_scp).items():
            if k not in labels:
                raise InputError(f"{args.embed_scp}: key {k!r} has no noise type")
            v = np.load(path).astype(np.float32).reshape(-1)
            ext.setdefault(labels[k], []).append(v)
        dims = {len(v) for vs in ext.values() for v in vs}
        if len(dims) != 1:
            raise InputError(f"{args.embed_scp}: features of different sizes {sorted(dims)}")
        ext = {t: ext.get(t, []) for t in audio}
    return NoiseItems(audio, ext, args.image_size, speech=load_speech(args), snr_range=snr_range(args.decoder_snr))


def snr_range(v) -> tuple:
    if not (isinstance(v, (list, tuple)) and len(v) == 2):
        raise InputError(f"--decoder_snr must be a YAML list [low, high] in dB, got {v!r}")
    return float(v[0]), float(v[1])


def load_speech(args) -> list:
    """Up to ``--max_speech`` utterances of ``--speech_dir``, evenly spaced over its keys
    (so that every talker of a sorted data dir contributes); [] without it."""
    if bool(args.speech_dir) != (args.decoder_disc_steps > 0):
        raise InputError("--speech_dir and --decoder_disc_steps > 0 go together (the discriminative decoder "
                         "phase fits noise plus that speech)")
    if not args.speech_dir:
        return []
    wav = DataDir(args.speech_dir).table("wav.scp")
    if args.max_speech < 1 or not wav:
        raise InputError(f"--speech_dir {args.speech_dir}: need --max_speech >= 1 and a non-empty wav.scp")
    keys = spread_keys(wav, args.max_speech)
    log.info("decoder: %d speech utterances of %s added to the noise crops", len(keys), args.speech_dir)
    return [load_audio(wav[k], args.fs, utt=k)[0].astype(np.float32) for k in keys]


def run(args) -> None:
    torch.set_num_threads(max(1, args.num_threads))
    torch.manual_seed(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    items = load_items(args)
    d = DataDir(args.noise_dir)
    sents = corpus(items.types, args.text_per_type, args.seed)
    if d.has("noise_desc"):
        sents += list(read_table(d.file("noise_desc")).values())
    init = None
    if args.init_model:
        from avse.nets.noise_embedder import NoiseEmbedder

        init = NoiseEmbedder.load(args.init_model)
        tok = init.tok
    else:
        tok = Tokenizer.train(sents, args.vocab_size)
    ext_dim = len(next(iter(items.ext.values()))[0]) if items.ext else 0
    model_conf = dict(dim=args.dim, vocab_size=tok.vocab_size, fs=args.fs, ext_dim=ext_dim,
                      decoder_n_fft=args.decoder_n_fft, decoder_rank=args.decoder_rank, hidden=args.hidden)
    model = NoiseEmbedModel(**model_conf)
    if init is not None:
        own = model.state_dict()
        same = {k: v for k, v in init.model.state_dict().items() if k in own and own[k].shape == v.shape}
        if not any(k.startswith(("audio.", "text.")) for k in same):
            raise InputError(f"--init_model {args.init_model}: no encoder tensor matches this configuration "
                             "(dim, hidden, ext_dim)")
        model.load_state_dict(same, strict=False)
        log.info("initialised %d of %d tensors from %s", len(same), len(own), args.init_model)
    log.info("noise embedding: %d types %s, vocabulary %d, %d parameters", len(items.types), items.types,
             tok.vocab_size, sum(p.numel() for p in model.parameters()))
    rows = []

    def on_log(row):
        rows.append(row)
        log.info("%s step %d loss %.4f%s", row["phase"], row["step"], row["loss"],
                 f" T={row['temperature']:.3f}" if "temperature" in row else "")

    train(model, items, tok, utt_rng(args.seed, "noise_embed_train"), args.steps, args.decoder_steps,
          int(round(args.clip_seconds * args.fs)), args.lr, args.decoder_modality, args.decoder_n_fft,
          args.decoder_hop, args.decoder_h_iters, on_log=on_log, disc_steps=args.decoder_disc_steps,
          clip=args.decoder_clip)
    meta = {"types": items.types, "fs": args.fs, "clip_seconds": args.clip_seconds, "ext_dim": ext_dim,
            "image_size": args.image_size, "decoder": {"n_fft": args.decoder_n_fft, "hop": args.decoder_hop,
                                                      "rank": args.decoder_rank, "modality": args.decoder_modality,
                                                      "disc_steps": args.decoder_disc_steps,
                                                      "speech": len(items.speech), "snr": list(items.snr_range),
                                                      "clip": args.decoder_clip}}
    save_noise_embed(os.path.join(args.out_dir, "model.pt"), model, tok, model_conf, meta)
    write_csv_rows(os.path.join(args.out_dir, "train_log.csv"), rows)
    save_config(args, args.out_dir)
    log.info("wrote %s", os.path.join(args.out_dir, "model.pt"))


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
