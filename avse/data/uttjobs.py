"""Resumable per-utterance jobs and the merge of their results into a data dir.

A stage runs as ``$cmd JOB=1:N ... python -m avse.bin.<verb> --key_file keys.JOB
--job JOB --out_dir DIR``: each job processes its keys and appends, after each
utterance's output files are complete (written atomically), one JSON line
``{"key": utt, "rows": {table: value}}`` to ``DIR/.jobs/rows.JOB.jsonl``. A killed
job leaves at most a truncated last line, which is dropped on the next run; finished
utterances are skipped, so a re-run resumes. The merge (``--merge true``) collects
every job's rows into sorted tables, writes ``spk2utt``, validates the directory and
marks it done; a done directory makes later runs of the stage return at once.

An utterance for which ``fn`` raises :class:`SkipUtterance` is always left out and
listed in ``DIR/.jobs/skipped.JOB``. Utterances that fail with an :class:`InputError` either stop the job (``on_error:
fail``, the default: the message names the utterance) or are listed with the reason
in ``DIR/.jobs/skipped.JOB`` and left out (``on_error: skip``).

Every such command follows one skeleton, :func:`run_stage`: a done directory returns
at once; the inputs are read; the configuration is checked against the one the
directory was made with; then either this job runs or (``--merge true``) the jobs are
merged. A command gives it the pieces as a :class:`Stage`.
"""
import glob
import json
import logging
import os
from dataclasses import dataclass
from typing import Callable, Collection, Dict, Iterable, Iterator, List, Mapping

from tqdm import tqdm

from avse.errors import InputError, SkipUtterance, StageError
from avse.io.scp import c_sorted, read_table, write_table
from avse.utils.fileio import atomic_open, is_done, mark_done, write_json

log = logging.getLogger(__name__)

Rows = Dict[str, str]


def _jobs_dir(out_dir: str) -> str:
    return os.path.join(out_dir, ".jobs")


def iter_records(path: str) -> Iterator[dict]:
    """Stream the JSON records of an append-only log; an incomplete last line (a killed
    job) is dropped and truncated away once the stream is exhausted."""
    if not os.path.isfile(path):
        return
    good = 0
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError:
                break
            good += len(raw)
            yield rec
    if good != os.path.getsize(path):
        log.warning("%s: dropping an incomplete last record (killed job)", path)
        with open(path, "r+b") as f:
            f.truncate(good)


def read_rows(path: str) -> Dict[str, Rows]:
    """Read a rows log ``{key: rows}``, dropping (and truncating away) an incomplete last line."""
    return {rec["key"]: rec["rows"] for rec in iter_records(path)}


def select_keys(all_keys: Iterable[str], key_file: str | None) -> List[str]:
    """Keys of this job: those of ``key_file`` (validated against ``all_keys``) or all."""
    all_keys = list(all_keys)
    if key_file is None:
        return all_keys
    known = set(all_keys)
    keys = list(read_table(key_file, allow_empty_value=True))
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise InputError(f"{key_file}: {len(unknown)} keys not in the input, e.g. {unknown[:3]}")
    return keys


def run_job(keys: List[str], fn: Callable[[str], Rows], out_dir: str, job: int = 1,
            on_error: str = "fail", progress: bool = True, desc: str = "") -> Dict[str, Rows]:
    """Run ``fn(key) -> rows`` over ``keys``, resumably. Returns all rows of this job.

    ``fn`` must write its output files atomically before returning; the row is
    recorded only after it returns, so a recorded utterance is a complete one.
    """
    if on_error not in ("fail", "skip"):
        raise InputError(f"on_error must be fail or skip, got {on_error!r}")
    if is_done(out_dir):
        log.info("%s is complete; nothing to do", out_dir)
        return {}
    jd = _jobs_dir(out_dir)
    os.makedirs(jd, exist_ok=True)
    rows_path = os.path.join(jd, f"rows.{job}.jsonl")
    done = read_rows(rows_path)
    todo = [k for k in keys if k not in done]
    if done:
        log.info("job %d: %d of %d utterances already done, resuming", job, len(keys) - len(todo), len(keys))
    skipped: Dict[str, str] = {}
    with open(rows_path, "a", encoding="utf-8") as f:
        for key in tqdm(todo, desc=desc or f"job {job}", disable=not progress, unit="utt"):
            try:
                rows = fn(key)
            except SkipUtterance as e:
                log.warning("leaving out %s: %s", key, e)
                skipped[key] = str(e).replace("\n", " ")
                continue
            except InputError as e:
                if on_error == "fail":
                    raise InputError(f"utterance {key!r}: {e}") from e
                log.warning("skipping %s: %s", key, e)
                skipped[key] = str(e).replace("\n", " ")
                continue
            f.write(json.dumps({"key": key, "rows": rows}, sort_keys=True) + "\n")
            f.flush()
            done[key] = rows
    skip_path = os.path.join(jd, f"skipped.{job}")
    if skipped:
        write_table(skip_path, skipped)
    return done


def collect_rows(out_dir: str) -> tuple[Dict[str, Rows], Dict[str, str]]:
    """Every job's rows of ``out_dir`` (key -> rows) and the skipped keys (key -> reason)."""
    jd = _jobs_dir(out_dir)
    paths = sorted(glob.glob(os.path.join(jd, "rows.*.jsonl")))
    if not paths:
        raise StageError(f"{out_dir}: no job results to merge; run the jobs first")
    rows: Dict[str, Rows] = {}
    for p in paths:
        rows.update(read_rows(p))
    skipped: Dict[str, str] = {}
    for p in glob.glob(os.path.join(jd, "skipped.*")):
        skipped.update(read_table(p))
    return rows, skipped


def write_data_dir(out_dir: str, rows: Dict[str, Rows], extra: Dict[str, Dict[str, str]] | None = None,
                   validate: bool = True) -> Dict[str, Dict[str, str]]:
    """Write per-utterance ``rows`` as sorted tables (+ ``spk2utt``) and check the dir.

    Tables whose name starts with ``_`` are bookkeeping and not written.
    """
    from avse.data.datadir import DataDir, write_spk2utt

    tables: Dict[str, Dict[str, str]] = {}
    for key, r in rows.items():
        for tab, val in r.items():
            if not tab.startswith("_"):
                tables.setdefault(tab, {})[key] = str(val)
    os.makedirs(out_dir, exist_ok=True)
    for tab, vals in tables.items():
        if len(vals) != len(rows):
            raise StageError(f"{out_dir}: table {tab} lacks {len(rows) - len(vals)} of {len(rows)} utterances")
        write_table(os.path.join(out_dir, tab), vals)
    for tab, vals in (extra or {}).items():
        write_table(os.path.join(out_dir, tab), vals)
    if "utt2spk" in tables:
        write_spk2utt(out_dir)
    if validate and "wav.scp" in tables:
        DataDir(out_dir).validate(check_files=True)
    return tables


def merge_jobs(out_dir: str, extra: Dict[str, Dict[str, str]] | None = None,
               validate: bool = True, info: dict | None = None) -> Dict[str, Dict[str, str]]:
    """Merge every job's rows of ``out_dir`` into sorted tables and mark it done.

    Args:
        extra: further tables to write as they are (e.g. dir-level ``noise_desc``).
        validate: check the result with :class:`avse.data.datadir.DataDir` (when it
            has a ``wav.scp``).
        info: recorded in the done marker (e.g. the resolved config).
    Returns:
        The merged per-utterance tables (empty when the dir was already done).
    """
    if is_done(out_dir):
        return {}
    rows, skipped = collect_rows(out_dir)
    if skipped:
        write_table(os.path.join(out_dir, "skipped"), skipped)
        log.warning("%s: %d utterances skipped (listed in %s/skipped)", out_dir, len(skipped), out_dir)
    tables = write_data_dir(out_dir, rows, extra, validate)
    mark_done(out_dir, {"utterances": len(rows), "skipped": len(skipped), **(info or {})})
    return tables


#: options that only steer a job (:func:`avse.utils.config.add_job_args`), not its outputs
JOB_OPTIONS = ("key_file", "job", "merge", "progress", "verbose")


def stage_config(args, ignore: Iterable[str] = ()) -> dict:
    """The options of parsed ``args`` that define a stage's outputs, for
    :func:`check_config`: all but :data:`JOB_OPTIONS` and ``ignore``."""
    from avse.utils.config import to_dict

    skip = set(JOB_OPTIONS) | set(ignore)
    return {k: v for k, v in to_dict(args).items() if k not in skip}


def check_config(out_dir: str, config: dict) -> None:
    """Record ``config`` for ``out_dir``; refuse to mix outputs of different configs.

    A stage re-run with another configuration would otherwise resume from outputs
    made with the old one; the user removes the directory to start again.
    """
    path = os.path.join(_jobs_dir(out_dir), "config.json")
    norm = json.loads(json.dumps(config, sort_keys=True, default=str))
    if os.path.isfile(path):
        with open(path) as f:
            old = json.load(f)
        if old != norm:
            diff = c_sorted(k for k in set(old) | set(norm) if old.get(k) != norm.get(k))
            raise StageError(f"{out_dir} was made with another configuration (differs in {diff}); "
                             "remove the directory to make it again")
        return
    os.makedirs(_jobs_dir(out_dir), exist_ok=True)
    write_json(path, norm)


@dataclass
class Stage:
    """What a command gives :func:`run_stage`: built by its ``setup()`` after the done
    check, from the inputs it reads.

    Attributes:
        merge: merge the jobs' results and mark the directory done (``--merge true``).
        keys: every key of the stage, in order; the values of a mapping are written
            next to the keys by ``--list_keys`` (e.g. the split of each key).
        work: build the per-utterance function ``key -> rows`` of :func:`run_job`;
            called on the job path only (a merge loads no model).
        job: instead of ``keys`` and ``work``, a job that runs itself (e.g. a shard of
            a CSV streamed by line number).
    """

    merge: Callable[[], None]
    keys: Collection[str] = ()
    work: Callable[[], Callable[[str], Rows]] | None = None
    job: Callable[[], None] | None = None


def write_keys(path: str, keys: Collection[str]) -> None:
    """Write ``keys`` sorted in byte order, one a line; a mapping as ``<key> <value>`` lines."""
    if isinstance(keys, Mapping):
        write_table(path, keys)
        return
    with atomic_open(path) as f:
        f.writelines(k + "\n" for k in c_sorted(keys))


def run_stage(args, out_dir: str, setup: Callable[[], Stage], config: dict, desc: str = "",
              merge_when_done: bool = False) -> None:
    """Run one call of a per-utterance command over ``out_dir`` (the directory that
    holds its jobs' records and done marker).

    In order: ``--list_keys F``: ``setup()``, write its keys to ``F`` (:func:`write_keys`)
    and return. A done ``out_dir``: log and return (with ``merge_when_done`` a
    ``--merge true`` still merges: the merge writes outside ``out_dir``). ``setup()``
    reads the inputs (their errors come before anything is recorded);
    :func:`check_config` refuses a directory made with another ``config``. Then
    ``--merge true``: ``stage.merge()``; else this job: ``stage.job()``, or
    :func:`run_job` of ``stage.work()`` over ``select_keys(stage.keys, --key_file)``
    with ``--job``, ``--on_error``, ``--progress`` and ``desc``.

    ``args`` holds the options of :func:`avse.utils.config.add_job_args`; one a command
    does not have takes its default (no ``--list_keys``; every key; job 1; ``on_error:
    fail``), and a command without ``--merge`` merges right after its one job.
    """
    list_keys = getattr(args, "list_keys", None)
    if list_keys:
        keys = setup().keys
        write_keys(list_keys, keys)
        log.info("%d keys listed in %s", len(keys), list_keys)
        return
    merge = getattr(args, "merge", None)
    if is_done(out_dir) and not (merge and merge_when_done):
        log.info("%s is complete; nothing to do", out_dir)
        return
    stage = setup()
    check_config(out_dir, config)
    if merge:
        stage.merge()
        return
    if stage.job is not None:
        stage.job()
    else:
        keys = select_keys(stage.keys, getattr(args, "key_file", None))
        run_job(keys, stage.work(), out_dir, job=getattr(args, "job", 1), on_error=getattr(args, "on_error", "fail"),
                progress=args.progress, desc=desc)
    if merge is None:
        stage.merge()
