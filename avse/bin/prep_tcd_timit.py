"""Data preparation of TCD-TIMIT (stage 1 of egs/tcd_timit), resumable and parallel::

    python -m avse.bin.prep_tcd_timit --tcd_dir T --corpus_dir C --data_dir data --list_keys C/keys
    $cmd JOB=1:N ... python -m avse.bin.prep_tcd_timit ... --key_file keys.JOB --job JOB
    python -m avse.bin.prep_tcd_timit ... --merge true
    python -m avse.bin.prep_tcd_timit ... [--ntcd_dir N] [--demand_dir D] --tests true

Per clip (``avse.corpus.real.tcd_timit`` for the layouts): the corpus wav when there is
one, resampled to ``--fs`` into ``C/wav/`` when at another rate; else the mp4's audio
track decoded by PyAV into ``C/wav/``. ``video.scp`` is the camera clip, or the
pre-cropped mouth video under ``--lips_dir``.

The merge writes ``data/{train,valid,test}`` (speaker split of REFERENCE section 8:
``wav.scp video.scp utt2spk spk2utt utt2dur``). ``--tests true`` then writes
``data/test_sub`` (``--subset_per_speaker`` utterances of every test speaker, fixed by
``--seed``: the clean side of the simulated test sets); with ``--ntcd_dir`` ``data/test_ntcd`` (NTCD-TIMIT noisy versions of the
test utterances: ``wav.scp`` noisy, ``spk1.scp`` clean, ``video.scp``, ``utt2noise``,
``utt2snr``); with ``--demand_dir`` ``data/noise_demand`` (channel 1 of the five
TCD-DEMAND noise types at ``--fs``: ``wav.scp utt2noise noise_desc``).
"""
import argparse
import logging
import os
import sys

from avse.corpus.real import tcd_timit as tcd
from avse.data.datadir import DataDir
from avse.data.uttjobs import Stage, collect_rows, run_stage, write_data_dir
from avse.errors import StageError
from avse.io.audio import audio_info, load_audio, save_audio
from avse.io.av_audio import read_audio_track
from avse.io.scp import c_sorted, write_table
from avse.utils.cli import run_main
from avse.utils.config import add_job_args, none_or, save_config, str2bool, to_dict, yaml_value
from avse.utils.fileio import mark_done

log = logging.getLogger("avse.prep_tcd_timit")
CLIP_OPTIONS = ("tcd_dir", "camera", "lips_dir", "fs")  # what the per-clip outputs depend on


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tcd_dir", required=True, help="TCD-TIMIT root (holds volunteers/)")
    p.add_argument("--corpus_dir", required=True, help="where extracted or resampled audio goes")
    p.add_argument("--data_dir", required=True, help="where the data dirs go")
    p.add_argument("--camera", default="straightcam", choices=["straightcam", "30degcam"])
    p.add_argument("--lips_dir", type=none_or(str), default=None,
                   help="pre-cropped 88x88 mouth videos <dir>/<spk>/<utt>.mp4 (video.scp points there)")
    p.add_argument("--ntcd_dir", type=none_or(str), default=None, help="NTCD-TIMIT root (optional)")
    p.add_argument("--ntcd_noises", type=yaml_value, default=None, help="noise folders to use (default: all)")
    p.add_argument("--ntcd_snrs", type=yaml_value, default=None, help="SNRs (dB) to use (default: all)")
    p.add_argument("--demand_dir", type=none_or(str), default=None, help="DEMAND root (optional)")
    p.add_argument("--subset_per_speaker", type=int, default=10, help="utterances per test speaker in test_sub")
    p.add_argument("--fs", type=int, default=16000, help="sample rate of the written audio (Hz)")
    p.add_argument("--list_keys", type=none_or(str), default=None, help="write the clip keys and exit")
    p.add_argument("--tests", type=str2bool, default=False,
                   help="write test_sub, test_ntcd (--ntcd_dir) and noise_demand (--demand_dir), then exit")
    add_job_args(p)
    return p


def prepare_clip(clip: tcd.Clip, corpus_dir: str, fs: int) -> dict:
    """Rows of one clip; writes ``corpus_dir/wav/<key>.wav`` unless the corpus wav is at ``fs``."""
    out = os.path.join(os.path.abspath(corpus_dir), "wav", f"{clip.key}.wav")
    if clip.audio is not None:
        sr, _, n = audio_info(clip.audio, utt=clip.key)
        wav = clip.audio
        if sr != fs:
            x, _ = load_audio(clip.audio, fs, utt=clip.key, resample_to_fs=True)
            save_audio(out, x, fs, clip_ok=True)  # resampling may overshoot full scale a little
            wav, n = out, len(x)
        else:
            load_audio(clip.audio, fs, utt=clip.key)  # validate (silent, NaN, channels)
    else:
        x = read_audio_track(clip.video, fs, utt=clip.key)
        save_audio(out, x, fs, clip_ok=True)  # lossy (AAC) tracks may overshoot full scale a little
        wav, n = out, len(x)
    return {"_split": clip.split, "wav.scp": wav, "video.scp": os.path.abspath(clip.video),
            "utt2spk": clip.speaker, "utt2dur": f"{n / fs:.4f}"}


def write_ntcd(args, test_rows: dict) -> None:
    clean = {k: r["wav.scp"] for k, r in test_rows.items()}
    noisy = tcd.scan_ntcd(args.ntcd_dir, clean, args.ntcd_noises, args.ntcd_snrs)
    clean_root = os.path.join(args.ntcd_dir, "Clean")
    rows = {}
    for k, v in noisy.items():
        ref = tcd.ntcd_path(clean_root, v["clean"]) if os.path.isdir(clean_root) else None
        sr, _, n = audio_info(v["wav"], utt=k)
        r = test_rows[v["clean"]]
        rows[k] = {"wav.scp": os.path.abspath(v["wav"]), "spk1.scp": os.path.abspath(ref or clean[v["clean"]]),
                   "video.scp": r["video.scp"], "utt2spk": r["utt2spk"], "utt2noise": v["noise"],
                   "utt2snr": f"{v['snr']:g}", "utt2dur": f"{n / sr:.4f}"}
    write_data_dir(os.path.join(args.data_dir, "test_ntcd"), rows)
    log.info("test_ntcd: %d noisy utterances", len(rows))


def write_demand(args) -> None:
    rows = {}
    for t, path in tcd.find_demand(args.demand_dir).items():
        sr, _, n = audio_info(path, utt=t)
        if sr != args.fs:
            x, _ = load_audio(path, args.fs, utt=t, resample_to_fs=True, allow_silent=True)
            path = os.path.join(os.path.abspath(args.corpus_dir), "demand", f"{t}.wav")
            save_audio(path, x, args.fs, clip_ok=True)
            n = len(x)
        rows[t] = {"wav.scp": os.path.abspath(path), "utt2noise": t, "utt2spk": t,
                   "utt2dur": f"{n / args.fs:.4f}"}
    write_data_dir(os.path.join(args.data_dir, "noise_demand"), rows,
                   extra={"noise_desc": {t: tcd.DEMAND_DESCRIPTIONS[t] for t in rows}})


def write_tests(args) -> None:
    """The test-side dirs from ``data/test`` (rewritten on every call: a corpus added to
    db.sh later is picked up)."""
    if not os.path.isfile(os.path.join(args.data_dir, "test", "wav.scp")):
        raise StageError(f"{args.data_dir}/test not found; prepare the clips first (jobs, then --merge true)")
    test = DataDir(os.path.join(args.data_dir, "test"))
    sub = tcd.pick_per_speaker(test.table("utt2spk"), args.subset_per_speaker, args.seed)
    test.subset(sub, os.path.join(args.data_dir, "test_sub")).validate()
    if args.ntcd_dir:
        test_rows = {k: {"wav.scp": test.table("wav.scp")[k], "video.scp": test.table("video.scp")[k],
                         "utt2spk": test.table("utt2spk")[k]} for k in test.keys}
        write_ntcd(args, test_rows)
    if args.demand_dir:
        write_demand(args)


def merge_clips(args, clips: dict) -> None:
    rows, skipped = collect_rows(args.corpus_dir)
    missing = c_sorted(set(clips) - set(rows) - set(skipped))
    if missing:
        raise StageError(f"{len(missing)} of {len(clips)} clips were not prepared, e.g. {missing[:3]}; "
                         "run the jobs again (finished clips are skipped)")
    by_split: dict = {}
    for k, r in rows.items():
        by_split.setdefault(r["_split"], {})[k] = r
    for split in ("train", "valid", "test"):
        if not by_split.get(split):
            raise StageError(f"TCD_TIMIT={args.tcd_dir}: no clip of any {split} speaker")
        write_data_dir(os.path.join(args.data_dir, split), by_split[split])
        log.info("%s: %d utterances of %d speakers", split, len(by_split[split]),
                 len({r['utt2spk'] for r in by_split[split].values()}))
    if skipped:
        write_table(os.path.join(args.data_dir, "tcd_timit_skipped"), skipped)
    save_config(args, args.corpus_dir)
    mark_done(args.corpus_dir, {"clips": len(rows), "skipped": len(skipped)})


def run(args) -> None:
    if args.tests:
        write_tests(args)
        return

    def setup() -> Stage:
        clips = {c.key: c for c in tcd.scan_clips(args.tcd_dir, args.camera, args.lips_dir)}

        def clip_rows(key: str) -> dict:
            return prepare_clip(clips[key], args.corpus_dir, args.fs)

        return Stage(keys={k: c.split for k, c in clips.items()}, work=lambda: clip_rows,
                     merge=lambda: merge_clips(args, clips))

    config = {k: v for k, v in to_dict(args).items() if k in CLIP_OPTIONS}
    run_stage(args, args.corpus_dir, setup, config, desc=f"tcd_timit job {args.job}")


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
