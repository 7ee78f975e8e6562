"""Data preparation of AVSpeech (stage 1 of egs/avspeech), sharded and resumable, for
millions of clips::

    $cmd JOB=1:N log/prep.JOB.log python -m avse.bin.prep_avspeech --train_csv T --test_csv S \\
        --clips_dir D --out_dir W --data_dir data --nj N --job JOB
    python -m avse.bin.prep_avspeech ... --nj N --merge true

Job ``j`` streams the CSVs (``avse.corpus.real.avspeech``) and takes line ``i`` when ``i mod
N = j - 1``: no key list, no per-clip process, memory independent of the corpus size.
Per clip: the file ``D/<ytid>_<start>-<end>.mp4``; its audio track decoded by PyAV to
mono ``--fs`` into ``W/wav/<000-999>/<clip>.wav``. Every line processed appends one JSON
record to ``W/shards/rows.<j>.of<N>.jsonl``; a re-run skips as many of the shard's lines
as the log holds complete records (a killed job's truncated last record is dropped).
A missing clip, an undecodable one or a malformed CSV line is recorded, never fatal.

The merge sorts each set's records externally (``avse.data.extsort``) and streams them
into ``data/avspeech_{train,valid,test}`` (``wav.scp video.scp utt2spk spk2utt utt2face
utt2dur``; ``utt2face`` is ``<x> <y>``, the CSV's normalised face centre, for the
``box`` lip backend; valid: the training videos whose id hashes into
``--valid_permille``), ``data/avspeech_test_sub`` (``--test_subset`` test clips of
smallest ``stable_hash(seed, clip)``, for the simulated test set), and the report
``W/report/{missing,failed,bad}.txt`` (``<clip>\\t<reason>``, sorted) with ``W/report/summary.json``.
"""
import argparse
import heapq
import json
import logging
import os
import sys
from collections import Counter

from tqdm import tqdm

from avse.corpus.real import avspeech as avs
from avse.data.extsort import sort_file
from avse.data.uttjobs import Stage, iter_records, run_stage, stage_config
from avse.errors import InputError, StageError
from avse.io.audio import save_audio
from avse.io.av_audio import read_audio_track
from avse.utils.cli import run_main
from avse.utils.config import none_or, save_config, str2bool
from avse.utils.fileio import mark_done, write_json
from avse.utils.seeding import stable_hash

log = logging.getLogger("avse.prep_avspeech")
TABLES = ("wav.scp", "video.scp", "utt2spk", "utt2face", "utt2dur")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_csv", type=none_or(str), default=None, help="avspeech_train.csv")
    p.add_argument("--test_csv", type=none_or(str), default=None, help="avspeech_test.csv")
    p.add_argument("--clips_dir", required=True, help="folder of downloaded clips <ytid>_<start>-<end>.mp4")
    p.add_argument("--out_dir", required=True, help="work folder: decoded audio, shard logs, report")
    p.add_argument("--data_dir", required=True, help="where the data dirs go")
    p.add_argument("--fs", type=int, default=16000, help="sample rate of the decoded audio (Hz)")
    p.add_argument("--nj", type=int, required=True, help="number of shards (jobs)")
    p.add_argument("--job", type=int, default=1, help="this job's shard (1-based)")
    p.add_argument("--valid_permille", type=int, default=5, help="training videos held out for validation (per mille)")
    p.add_argument("--test_subset", type=int, default=500, help="clips in avspeech_test_sub")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk_lines", type=int, default=500_000, help="lines sorted in memory at once (merge)")
    p.add_argument("--merge", type=str2bool, default=False)
    p.add_argument("--progress", type=str2bool, default=True)
    p.add_argument("--verbose", type=int, default=1)
    return p


def _sets(args):
    out = [(s, p) for s, p in (("train", args.train_csv), ("test", args.test_csv)) if p]
    if not out:
        raise InputError("give --train_csv and/or --test_csv (" + avs.CSV_LAYOUT + ")")
    for s, p in out:
        if not os.path.isfile(p):
            raise InputError(f"{p}: AVSpeech {s} CSV not found ({avs.CSV_LAYOUT})")
    return out


def _log_path(args, job: int) -> str:
    return os.path.join(args.out_dir, "shards", f"rows.{job}.of{args.nj}.jsonl")


def process(row: avs.Row, split: str, args) -> dict:
    """The record of one CSV row: ``status`` ok / missing / failed / bad."""
    if row.error:
        return {"status": "bad", "key": f"{split}_line{row.index + 1}", "reason": row.error}
    dset = "avspeech_test" if split == "test" else \
        ("avspeech_valid" if avs.is_valid(row.ytid, args.valid_permille) else "avspeech_train")
    video = avs.clip_path(os.path.abspath(args.clips_dir), row.name)
    if not os.path.isfile(video):
        return {"status": "missing", "key": row.name, "set": dset, "reason": video}
    wav = avs.wav_path(os.path.abspath(args.out_dir), row.name)
    try:
        x = read_audio_track(video, args.fs, utt=row.name)
        save_audio(wav, x, args.fs, clip_ok=True)
    except InputError as e:
        return {"status": "failed", "key": row.name, "set": dset, "reason": str(e).replace("\n", " ")}
    return {"status": "ok", "key": row.name, "set": dset,
            "rows": {"wav.scp": wav, "video.scp": video, "utt2spk": row.ytid,
                     "utt2face": f"{row.x:.4f} {row.y:.4f}", "utt2dur": f"{len(x) / args.fs:.4f}"}}


def run_shard(args) -> None:
    if not 1 <= args.job <= args.nj:
        raise InputError(f"--job must be in 1..{args.nj}, got {args.job}")
    path = _log_path(args, args.job)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    done = Counter(rec["split"] for rec in iter_records(path))
    stats = Counter()
    with open(path, "a", encoding="utf-8") as f:
        for split, csv_path in _sets(args):
            skip = done[split]
            rows = (r for r in avs.iter_csv(csv_path) if avs.in_shard(r.index, args.job, args.nj))
            for row in tqdm(rows, desc=f"avspeech {split} shard {args.job}/{args.nj}", unit="clip",
                            disable=not args.progress):
                if skip:
                    skip -= 1
                    continue
                rec = process(row, split, args)
                rec["split"] = split
                f.write(json.dumps(rec, sort_keys=True) + "\n")
                f.flush()
                stats[rec["status"]] += 1
    log.info("shard %d/%d: %s (resumed after %d records)", args.job, args.nj, dict(stats), sum(done.values()))


def _records(args):
    for j in range(1, args.nj + 1):
        yield from iter_records(_log_path(args, j))


def _write_tables(sorted_path: str, out: str, keep=None) -> int:
    """Stream ``<key>\\t<rows json>`` lines (sorted) into the tables of data dir ``out``."""
    os.makedirs(out, exist_ok=True)
    names = TABLES + ("spk2utt",)
    fh = {t: open(os.path.join(out, t + ".tmp"), "w", encoding="utf-8") for t in names}
    n, spk, utts = 0, None, []
    try:
        with open(sorted_path, encoding="utf-8") as f:
            for line in f:
                key, payload = line.rstrip("\n").split("\t", 1)
                if keep is not None and key not in keep:
                    continue
                rows = json.loads(payload)
                for t in TABLES:
                    fh[t].write(f"{key} {rows[t]}\n")
                if rows["utt2spk"] != spk and utts:
                    fh["spk2utt"].write(f"{spk} {' '.join(utts)}\n")
                    utts = []
                spk = rows["utt2spk"]
                utts.append(key)
                n += 1
        if utts:
            fh["spk2utt"].write(f"{spk} {' '.join(utts)}\n")
    finally:
        for f in fh.values():
            f.close()
    for t in names:
        os.replace(os.path.join(out, t + ".tmp"), os.path.join(out, t))
    return n


def _split_records(args, tmp_dir: str) -> dict:
    """One pass over the shard logs: each record to an unsorted per-category file
    (a data set, or a report status). Returns ``{category: path}``."""
    paths, fh = {}, {}
    try:
        for r in _records(args):
            cat = r["set"] if r["status"] == "ok" else r["status"]
            if cat not in fh:
                paths[cat] = os.path.join(tmp_dir, f"{cat}.unsorted")
                fh[cat] = open(paths[cat], "w", encoding="utf-8")
            payload = json.dumps(r["rows"], sort_keys=True) if r["status"] == "ok" else r["reason"]
            fh[cat].write(f"{r['key']}\t{payload}\n")
    finally:
        for f in fh.values():
            f.close()
    return paths


def _lines(path: str):
    with open(path, encoding="utf-8") as f:
        yield from f


def merge(args) -> None:
    if not all(os.path.isfile(_log_path(args, j)) for j in range(1, args.nj + 1)):
        raise StageError(f"{args.out_dir}: not every one of the {args.nj} shards has run; run the jobs first")
    sort_dir = os.path.join(args.out_dir, "sorted")
    rep_dir = os.path.join(args.out_dir, "report")
    os.makedirs(sort_dir, exist_ok=True)
    os.makedirs(rep_dir, exist_ok=True)
    unsorted = _split_records(args, sort_dir)
    summary = {}
    sets = {"train": ["avspeech_train", "avspeech_valid"], "test": ["avspeech_test"]}
    for split, _ in _sets(args):
        for dset in sets[split]:
            if dset not in unsorted:
                log.warning("%s: no clip available; data dir not written", dset)
                summary[dset] = {"clips": 0}
                continue
            sp = os.path.join(sort_dir, f"{dset}.txt")
            n, dup = sort_file(_lines(unsorted[dset]), sp, args.chunk_lines)
            _write_tables(sp, os.path.join(args.data_dir, dset))
            summary[dset] = {"clips": n, "duplicate_lines": dup}
            log.info("%s: %d clips (%d duplicate CSV lines dropped)", dset, n, dup)
    if summary.get("avspeech_test", {}).get("clips"):
        sp = os.path.join(sort_dir, "avspeech_test.txt")
        with open(sp, encoding="utf-8") as f:  # the N smallest hashes: a heap of N keys
            keys = (line.split("\t", 1)[0] for line in f)
            keep = set(k for _, k in heapq.nsmallest(args.test_subset, ((stable_hash(args.seed, k), k) for k in keys)))
        n = _write_tables(sp, os.path.join(args.data_dir, "avspeech_test_sub"), keep)
        summary["avspeech_test_sub"] = {"clips": n}
    for status in ("missing", "failed", "bad"):
        path = os.path.join(rep_dir, f"{status}.txt")
        n, _ = sort_file(_lines(unsorted[status]) if status in unsorted else iter(()), path, args.chunk_lines)
        summary[status] = n
        if n:
            log.warning("%d clips %s: listed in %s", n, status, path)
    for p in unsorted.values():
        os.remove(p)
    write_json(os.path.join(rep_dir, "summary.json"), summary)
    save_config(args, args.out_dir)
    mark_done(args.out_dir, summary)


def run(args) -> None:
    if args.nj < 1:
        raise InputError(f"--nj must be >= 1, got {args.nj}")

    def setup() -> Stage:
        if not os.path.isdir(args.clips_dir):
            raise InputError(f"AVSPEECH_CLIPS={args.clips_dir}: not a folder; expected {avs.CLIPS_LAYOUT}")
        _sets(args)
        return Stage(job=lambda: run_shard(args), merge=lambda: merge(args))

    run_stage(args, args.out_dir, setup, stage_config(args, ignore=("chunk_lines", "data_dir", "test_subset")))


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
