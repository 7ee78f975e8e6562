"""Data-directory tools behind utils/*.sh (Kaldi-compatible interfaces).

    utils/split_scp.pl [--utt2spk UTT2SPK] IN OUT1 OUT2 ... OUTn
    utils/split_scp.pl [--utt2spk UTT2SPK] --num_splits N IN 'OUT.JOB'
    utils/utt2spk_to_spk2utt.pl [UTT2SPK] > SPK2UTT
    utils/validate_data_dir.sh [--no-files] [--audio] [--fs 16000] DIR
    utils/fix_data_dir.sh DIR
    utils/subset_data_dir.sh --keys LIST DIR OUT
"""
import argparse
import os
import sys

from avse.data.datadir import DataDir
from avse.errors import AvseError, InputError
from avse.io.scp import inverse_table, read_table, split_keys


def cmd_split(a) -> None:
    table = read_table(a.input, allow_empty_value=True)
    outs = list(a.outputs)
    if a.num_splits:
        if len(outs) != 1 or "JOB" not in outs[0]:
            raise InputError("with --num_splits give one output pattern containing JOB")
        outs = [outs[0].replace("JOB", str(i)) for i in range(1, a.num_splits + 1)]
    if not outs:
        raise InputError("no output files given")
    groups = read_table(a.utt2spk) if a.utt2spk else None
    parts = split_keys(list(table), len(outs), groups)
    empty = [o for o, p in zip(outs, parts) if not p]
    if empty:
        raise InputError(f"{a.input}: {len(table)} keys cannot fill {len(outs)} non-empty parts "
                         f"(e.g. {empty[0]} would be empty); use fewer jobs")
    for out, keys in zip(outs, parts):
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w", encoding="utf-8") as f:  # keep the input order and text
            f.writelines(f"{k} {table[k]}\n" if table[k] else f"{k}\n" for k in keys)


def cmd_spk2utt(a) -> None:
    u2s = read_table(a.utt2spk) if a.utt2spk != "-" else _read_stdin_table()
    for spk, utts in sorted(inverse_table(u2s).items(), key=lambda kv: kv[0].encode()):
        sys.stdout.write(f"{spk} {' '.join(utts)}\n")


def _read_stdin_table():
    import tempfile

    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write(sys.stdin.read())
    try:
        return read_table(f.name)
    finally:
        os.unlink(f.name)


def cmd_validate(a) -> None:
    DataDir(a.dir).validate(check_files=not a.no_files, check_audio=a.audio, fs=a.fs)
    print(f"{a.dir}: OK ({len(DataDir(a.dir).keys)} utterances)")


def cmd_fix(a) -> None:
    res = DataDir(a.dir).fix()
    print(f"{a.dir}: kept {res['kept']}, removed {res['removed']} utterances")


def cmd_subset(a) -> None:
    keys = list(read_table(a.keys, allow_empty_value=True))
    DataDir(a.dir).subset(keys, a.out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="avse.bin.datadir", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split", help="split an scp into parts")
    s.add_argument("--utt2spk", default=None, help="keep each speaker's utterances in one part")
    s.add_argument("--num_splits", type=int, default=0)
    s.add_argument("input")
    s.add_argument("outputs", nargs="+")
    s.set_defaults(fn=cmd_split)
    s = sub.add_parser("spk2utt", help="utt2spk -> spk2utt on stdout")
    s.add_argument("utt2spk", nargs="?", default="-")
    s.set_defaults(fn=cmd_spk2utt)
    s = sub.add_parser("validate", help="check a data dir")
    s.add_argument("--no-files", dest="no_files", action="store_true", help="do not check that files exist")
    s.add_argument("--audio", action="store_true", help="read every audio file (slow)")
    s.add_argument("--fs", type=int, default=None, help="expected sample rate with --audio")
    s.add_argument("dir")
    s.set_defaults(fn=cmd_validate)
    s = sub.add_parser("fix", help="sort tables, keep common keys, rebuild spk2utt/utt2dur")
    s.add_argument("dir")
    s.set_defaults(fn=cmd_fix)
    s = sub.add_parser("subset", help="copy the rows of some keys to a new dir")
    s.add_argument("--keys", required=True)
    s.add_argument("dir")
    s.add_argument("out")
    s.set_defaults(fn=cmd_subset)
    a = p.parse_args(argv)
    try:
        a.fn(a)
    except AvseError as e:
        print(f"{p.prog} {a.cmd}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
