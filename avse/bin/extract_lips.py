"""Lips only: mouth crops of every video of a data dir, into a lips dir.

    python -m avse.bin.extract_lips --data_dir data/X --out_dir dump/lips/X \\
        --lip_backend haar [--lip_conf "{mouth_y: 0.8}"] [--key_file K --job J] [--merge true]

Stage 3 of the recipes runs :mod:`avse.bin.dump`, which extracts the lips with the
same code (:func:`avse.lips.extract.extract_lips`) and fits them to the audio length.
This command is for lips without audio: to check a backend on a corpus, or to make
training data for the lip-reliability network (:mod:`avse.bin.train_lip_rel`).
It runs like every per-utterance stage, in parallel over ``nj`` jobs from the shell
(``utils/avse_jobs.sh``), resumable per utterance, then merged::

    run_jobs lips "${nj}" data/X/video.scp dump/lips/X "${train_cmd}" -- \
        python -m avse.bin.extract_lips --data_dir data/X --out_dir dump/lips/X --lip_backend haar

Output (sorted, Kaldi style): ``lip.scp`` (``(T, 88, 88)`` uint8 ``.npy``, 25 fps),
``lip_conf.scp`` (``(T,)`` float32 in [0, 1]; 0 = no detection, box interpolated),
``utt2lip_det`` (fraction of frames with a detection), the input ``video.scp``,
``config.yaml``; ``montage.png`` (``--montage N``: a contact
sheet of N utterances) to look at; ``.done`` records the overall detection rate and
the extraction time per frame.
"""
import argparse
import json
import logging
import os
import sys
import time

import numpy as np

from avse.data.uttjobs import Stage, collect_rows, merge_jobs, run_stage, stage_config
from avse.errors import StageError
from avse.io.scp import read_table
from avse.lips import LIP_BACKENDS
from avse.lips.extract import FACE_TABLE, extract_lips, lip_name, parse_face_xy, save_lips
from avse.utils.cli import run_main
from avse.utils.config import add_job_args, save_config, yaml_value

log = logging.getLogger("avse.extract_lips")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", required=True,
                   help="data dir with video.scp and optionally utt2face (face centres; utterances "
                        "it lacks are processed without one)")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--lip_backend", default="haar", help=f"one of {LIP_BACKENDS.names()}")
    p.add_argument("--lip_conf", type=yaml_value, default={}, help="backend options (mapping)")
    p.add_argument("--montage", type=int, default=0, help="utterances in montage.png at the merge (0: none)")
    add_job_args(p)
    return p


class Extractor:
    """``key -> rows`` for :func:`avse.data.uttjobs.run_job`."""

    def __init__(self, args):
        self.args = args
        vpath = os.path.join(args.data_dir, "video.scp")
        if not os.path.isfile(vpath):
            raise StageError(f"{args.data_dir}: no video.scp; nothing to extract lips from")
        self.videos = read_table(vpath)
        fpath = os.path.join(args.data_dir, FACE_TABLE)
        self.faces = read_table(fpath) if os.path.isfile(fpath) else {}
        LIP_BACKENDS.get(args.lip_backend)  # unknown name fails early

    def __call__(self, key: str) -> dict:
        a = self.args
        video = self.videos[key]
        face_xy = parse_face_xy(self.faces[key], key) if key in self.faces else None
        t0 = time.perf_counter()
        lips, conf = extract_lips(video, a.lip_backend, a.lip_conf, utt=key, face_xy=face_xy)
        seconds = time.perf_counter() - t0
        lip_path, conf_path = save_lips(a.out_dir, lip_name(video, None, face_xy), lips, conf)
        rows = {"lip.scp": lip_path, "lip_conf.scp": conf_path, "video.scp": video,
                "utt2lip_det": f"{float(np.mean(conf > 0)):.4f}",
                "_frames": len(lips), "_seconds": round(seconds, 4)}
        return rows


def run(args) -> None:
    def setup() -> Stage:
        if not os.path.isdir(args.data_dir):
            raise StageError(f"{args.data_dir}: not found; run the data preparation stages first")
        ex = Extractor(args)
        return Stage(keys=ex.videos, work=lambda: ex, merge=lambda: finish(args))

    run_stage(args, args.out_dir, setup, stage_config(args, ignore=("montage",)),
              desc=f"lips {os.path.basename(os.path.normpath(args.data_dir))}")


def finish(args) -> None:
    """Merge the jobs, report the detection rate and timing, write the montage."""
    rows, _ = collect_rows(args.out_dir)
    frames = sum(int(r["_frames"]) for r in rows.values())
    detected = sum(float(r["utt2lip_det"]) * int(r["_frames"]) for r in rows.values())
    seconds = sum(float(r["_seconds"]) for r in rows.values())
    info = {"backend": args.lip_backend, "utterances": len(rows), "frames": frames,
            "detection_rate": round(detected / max(frames, 1), 4),
            "ms_per_frame": round(1000 * seconds / max(frames, 1), 2)}
    log.info("%s: %s", args.out_dir, json.dumps(info))
    if args.montage > 0 and rows:
        from avse.lips.montage import save_montage

        keys = sorted(rows)[:: max(1, len(rows) // args.montage)][: args.montage]
        save_montage(os.path.join(args.out_dir, "montage.png"),
                     {k: np.load(rows[k]["lip.scp"]) for k in keys})
    save_config(args, args.out_dir)
    merge_jobs(args.out_dir, info=info)


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
