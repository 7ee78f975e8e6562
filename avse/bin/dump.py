"""Stage 3: audio at the working rate and lip arrays, into a dump dir.

    python -m avse.bin.dump --data_dir data/X --out_dir dump/raw/X --fs 16000 \\
        [--lip_backend none|haar|landmarks|box] [--lip_conf "{...}"] [--key_file K --job J] [--merge true]

Every audio table (``wav.scp``, ``spk*.scp``, ``reverb*.scp``, ``noise*.scp``,
``dereverb*.scp``) is read and validated; files already at ``--fs`` are referenced
in place, others are resampled into ``out_dir/<table>/``. Other per-utterance tables
are copied. With ``video.scp`` and a lip backend, the mouth crops are written as
``(T, 88, 88)`` uint8 ``.npy`` (``lip.scp``) with per-frame confidences
``(T,)`` float32 (``lip_conf.scp``), by :func:`avse.lips.extract.extract_lips`; the
backend is ``--lip_backend`` with options ``--lip_conf`` (``none``, ``haar``, ``landmarks``, ``box``),
and a per-utterance face centre from ``utt2face`` (``<x> <y>`` in [0, 1]) is passed
to it as ``face_xy``.

Mixtures of K talkers (stage 2 with ``--n_speakers K``): every ``video<k>.scp`` (the
video of talker k = 2..K, :mod:`avse.data.sources`) becomes ``lip<k>.scp`` and
``lip_conf<k>.scp`` the same way (the same backend, ``utt2face<k>`` as its face centre),
so that an audio-visual prior finds the lips of every talker it separates. Stage 2 cut or
zero-padded the interferer's audio to the target's length, so its lips are fitted to the
mixture's length the same way (trimmed, or the last frame repeated with confidence 0)
without the length rule below, which is the target's.

Audio/video duration rule: the lips must have ``T = ceil(n_samples * 25 / fs)``
frames (``avse.corpus.types.n_video_frames``). A difference of at most one frame is
padded (last frame repeated, confidence 0) or trimmed silently. A larger difference
up to ``--max_av_mismatch`` seconds is padded/trimmed the same way and reported in
``out_dir/av_mismatch`` (``<utt> <audio_s> <video_s> <diff_s>``). Beyond that the
utterance is left out and listed in ``out_dir/skipped``.
"""
import argparse
import logging
import os
import sys

from avse.utils.cli import run_main
from avse.corpus.types import n_video_frames
from avse.data.datadir import AUDIO_TABLE, DataDir
from avse.data.sources import source_indices, source_table
from avse.data.uttjobs import Stage, merge_jobs, read_rows, run_stage, stage_config
from avse.errors import SkipUtterance, StageError
from avse.io.audio import audio_info, load_audio, save_audio
from avse.io.scp import read_table, write_table
from avse.lips import LIP_BACKENDS, LIP_FPS
from avse.lips.backends import fit_to_audio
from avse.lips.extract import FACE_TABLE, extract_lips, lip_name, parse_face_xy, save_lips
from avse.utils.config import add_job_args, save_config, yaml_value

log = logging.getLogger("avse.dump")


def _backend(v):
    """'null' (or empty) means no lips; every other value names a backend ('none' included)."""
    return None if v is None or str(v).lower() in ("null", "") else str(v)


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", required=True)
    p.add_argument("--out_dir", required=True)
    p.add_argument("--fs", type=int, default=16000, help="working sample rate (Hz)")
    p.add_argument("--lip_backend", type=_backend, default="none",
                   help="lip extraction backend for video.scp ('none': already mouth crops); "
                        "'null' to skip lips")
    p.add_argument("--lip_conf", type=yaml_value, default={}, help="backend options (mapping)")
    p.add_argument("--max_av_mismatch", type=float, default=0.5,
                   help="seconds of audio/video length difference tolerated (padded/trimmed)")
    add_job_args(p)
    return p


class Dumper:
    def __init__(self, args):
        self.args = args
        self.src = DataDir(args.data_dir)
        names = self.src.utt_tables()
        self.tables = {n: self.src.table(n) for n in names}
        self.audio_tables = [n for n in names if AUDIO_TABLE.match(n)]
        self.lips = args.lip_backend is not None and "video.scp" in self.tables
        # talkers with a video: 1 (video.scp) and k = 2.. (video<k>.scp) of a K-talker mixture
        self.talkers = [1] + source_indices("video.scp", self.tables) if self.lips else []
        if self.lips:
            LIP_BACKENDS.get(args.lip_backend)  # unknown name fails early

    def audio(self, table: str, key: str) -> tuple[str, int]:
        path = self.tables[table][key]
        fs = self.args.fs
        noise = table.startswith("noise")
        sr, _, _ = audio_info(path, utt=key)
        if sr == fs and not path.rstrip().endswith("|"):
            x, _ = load_audio(path, fs, utt=key, allow_silent=noise)  # validate in place
            return path, len(x)
        x, _ = load_audio(path, fs, utt=key, resample_to_fs=True, allow_silent=noise)
        out = os.path.join(self.args.out_dir, table[:-4], f"{key}.wav")
        save_audio(out, x, fs, subtype="FLOAT")
        return out, len(x)

    def lip(self, key: str, n_samples: int, k: int = 1) -> dict:
        """Rows ``lip<k>.scp``, ``lip_conf<k>.scp`` of talker ``k`` (1: ``lip.scp``; module
        docstring) for a mixture of ``n_samples`` samples at ``--fs``."""
        a = self.args
        video = self.tables[source_table("video.scp", k)][key]
        face = source_table(FACE_TABLE, k)
        face_xy = parse_face_xy(self.tables[face][key], key) if face in self.tables else None
        utt = key if k == 1 else f"{key} (talker {k}, {source_table('video.scp', k)})"
        lips, conf = extract_lips(video, a.lip_backend, a.lip_conf, utt=utt, face_xy=face_xy)
        target = n_video_frames(n_samples, a.fs, LIP_FPS)
        diff_s = (len(lips) - target) / LIP_FPS
        rows = {}
        if k == 1 and abs(len(lips) - target) > 1:
            if abs(diff_s) > a.max_av_mismatch:
                raise SkipUtterance(f"audio {n_samples / a.fs:.2f} s and video {len(lips) / LIP_FPS:.2f} s "
                                    f"differ by more than {a.max_av_mismatch} s")
            rows["_av_mismatch"] = f"{n_samples / a.fs:.3f} {len(lips) / LIP_FPS:.3f} {diff_s:+.3f}"
        lips, conf = fit_to_audio(lips, conf, target)
        # a video shared by several mixtures (one per SNR) is stored once per length
        lip_path, conf_path = save_lips(a.out_dir, lip_name(video, target, face_xy), lips, conf)
        rows.update({source_table("lip.scp", k): lip_path, source_table("lip_conf.scp", k): conf_path})
        return rows

    def __call__(self, key: str) -> dict:
        rows = {}
        n_samples = None
        for t in self.audio_tables:
            rows[t], n = self.audio(t, key)
            if t == "wav.scp":
                n_samples = n
        for t, tab in self.tables.items():
            if t not in rows:
                rows[t] = tab[key]
        for k in self.talkers:
            rows.update(self.lip(key, n_samples, k))
        return rows


def run(args) -> None:
    def setup() -> Stage:
        if not os.path.isdir(args.data_dir):
            raise StageError(f"{args.data_dir}: not found; run the data preparation stages first")
        dumper = Dumper(args)
        return Stage(keys=dumper.src.keys, work=lambda: dumper, merge=lambda: finish(args, dumper))

    run_stage(args, args.out_dir, setup, stage_config(args), desc=f"dump {os.path.basename(args.data_dir)}")


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


def finish(args, dumper: Dumper) -> None:
    """Merge the jobs; the done marker (written by merge_jobs) comes last."""
    import glob
    import shutil

    os.makedirs(args.out_dir, exist_ok=True)
    mismatch = {}
    for p in glob.glob(os.path.join(args.out_dir, ".jobs", "rows.*.jsonl")):
        for k, r in read_rows(p).items():
            if "_av_mismatch" in r:
                mismatch[k] = r["_av_mismatch"]
    if mismatch:
        write_table(os.path.join(args.out_dir, "av_mismatch"), mismatch)
        log.warning("%s: %d utterances with audio/video length mismatch > 1 frame (see av_mismatch)",
                    args.out_dir, len(mismatch))
    extra = {}
    for name in os.listdir(args.data_dir):  # dir-level files
        if name == "noise_desc":
            extra[name] = read_table(os.path.join(args.data_dir, name))
        elif name.endswith(".json"):
            shutil.copy(os.path.join(args.data_dir, name), os.path.join(args.out_dir, name))
    save_config(args, args.out_dir)
    merge_jobs(args.out_dir, extra=extra, info={"fs": args.fs, "lips": dumper.lips})


if __name__ == "__main__":
    sys.exit(main())
