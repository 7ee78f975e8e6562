"""Generate WHAMR!-style mixtures with the toolkit's simulation code (stage 1 of egs/whamr),
resumable and parallel over mixtures::

    python -m avse.bin.prep_whamr --wsj0_dir W --wham_dir N --out_dir C --data_dir data --list_keys C/keys
    $cmd JOB=1:N ... python -m avse.bin.prep_whamr ... --key_file keys.JOB --job JOB
    python -m avse.bin.prep_whamr ... --merge true

Mixtures: every row of WHAM!'s ``metadata/mix_param_meta_<split>.csv`` (its noise file
``<split>/<mixture>.wav``, speaker-1 SNR and speech start); speech: the two WSJ0
utterances named by the mixture (``avse.corpus.real.whamr``); rooms: the official ones
from ``--reverb_params_dir`` (``reverb_params_<split>.csv``) when given, else drawn
from WHAMR!'s distributions with ``utt_rng(seed, "whamr", split, mixture)`` (so the
output is the same for any ``--nj``); signals: ``avse.simulate.whamr``.

Files, as the official WHAMR! layout: ``C/wav{8k,16k}/{min,max}/{tr,cv,tt}/<signal>/<mixture>.wav``
with signals ``mix_{clean,single,both}_{anechoic,reverb}``, ``s{1,2}_{anechoic,reverb}``
and ``noise``. Data dirs, named as ESPnet's whamr recipe,
``data/<split>_mix_<single|both|clean>_<anechoic|reverb>_<min|max>_<8k|16k>``: ``wav.scp``
(the mixture), ``spk1.scp`` [``spk2.scp``] (the sources in that condition),
``noise1.scp`` (single, both), ``dereverb1.scp`` [``dereverb2.scp``] (reverb: the
anechoic sources), ``utt2spk`` (each mixture its own speaker, as ESPnet), ``utt2dur``,
``utt2t60`` (target and measured T60, s), ``utt2snr``, ``utt2room``; and the clean
WSJ0 sets ``data/{si_tr_s,si_dt_05,si_et_05}`` (``utt2spk``: the WSJ0 speaker) for the prior.
"""
import argparse
import logging
import os
import sys

from avse.corpus.real import whamr
from avse.data.uttjobs import Stage, collect_rows, run_stage, stage_config, write_data_dir
from avse.errors import InputError, StageError
from avse.io.audio import audio_info, load_audio, save_audio
from avse.io.scp import c_sorted, write_table
from avse.simulate.room import simulate_rirs
from avse.simulate.whamr import MIXTURES, version, whamr_sources
from avse.utils.cli import run_main
from avse.utils.config import add_job_args, none_or, save_config, yaml_value
from avse.utils.fileio import mark_done
from avse.utils.seeding import utt_rng

log = logging.getLogger("avse.prep_whamr")
#: options besides the job options that do not change the outputs
NOT_CONFIG = ("list_keys", "on_error", "data_dir")
RATES = {"8k": 8000, "16k": 16000}


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wsj0_dir", required=True, help="WSJ0 as wav (si_tr_s, si_dt_05, si_et_05)")
    p.add_argument("--wham_dir", required=True, help="WHAM! noise root ({tr,cv,tt}/ and metadata/)")
    p.add_argument("--out_dir", required=True, help="where the WHAMR! files go (official layout)")
    p.add_argument("--data_dir", required=True, help="where the data dirs go")
    p.add_argument("--reverb_params_dir", type=none_or(str), default=None,
                   help="folder of the official reverb_params_{tr,cv,tt}.csv (rooms); default: sampled rooms")
    p.add_argument("--splits", type=yaml_value, default=list(whamr.SPLITS), help="YAML list of tr, cv, tt")
    p.add_argument("--sample_rates", type=yaml_value, default=["8k", "16k"], help="YAML list of 8k, 16k")
    p.add_argument("--lengths", type=yaml_value, default=["min", "max"], help="YAML list of min, max")
    p.add_argument("--room", type=yaml_value, default={},
                   help="overrides of the sampled-room ranges (avse.corpus.real.whamr.WHAMR_ROOM), e.g. '{t60: [0.1, 0.5]}'")
    p.add_argument("--max_per_split", type=none_or(int), default=None,
                   help="only the first N mixtures (sorted) of each split; default: all")
    p.add_argument("--peak", type=float, default=0.9, help="largest absolute sample of any output")
    p.add_argument("--subtype", default="FLOAT", choices=["FLOAT", "PCM_16", "PCM_24"])
    p.add_argument("--list_keys", type=none_or(str), default=None, help="write the mixture keys and exit")
    add_job_args(p)
    return p


def _choice(v, allowed, name) -> list:
    if isinstance(v, str):
        v = [s for s in v.replace(",", " ").split() if s]
    if not isinstance(v, (list, tuple)) or not v or any(x not in allowed for x in v):
        raise InputError(f"--{name} must be a non-empty list of {list(allowed)}, got {v!r}")
    return [x for x in allowed if x in v]


class Maker:
    """Inputs and the per-mixture work of one job."""

    def __init__(self, args):
        self.args = a = args
        self.splits = _choice(a.splits, whamr.SPLITS, "splits")
        self.rates = _choice(a.sample_rates, tuple(RATES), "sample_rates")
        self.lengths = _choice(a.lengths, ("min", "max"), "lengths")
        self.wsj0 = whamr.index_wsj0(a.wsj0_dir)
        self.params = {s: whamr.read_mix_params(a.wham_dir, s) for s in self.splits}
        self.rooms = {}
        if a.reverb_params_dir:
            self.rooms = {s: whamr.read_reverb_params(os.path.join(a.reverb_params_dir, f"reverb_params_{s}.csv"))
                          for s in self.splits}
        self.keys = []
        for s in self.splits:
            names = c_sorted(self.params[s])[:a.max_per_split]
            self.keys += [f"{s}/{n}" for n in names]

    def path(self, rate: str, length: str, split: str, signal: str, name: str) -> str:
        return os.path.join(os.path.abspath(self.args.out_dir), f"wav{rate}", length, split, signal, f"{name}.wav")

    def source(self, split: str, utt: str, name: str) -> str:
        for sub in whamr.SPLIT_SUBSETS[split]:
            if utt in self.wsj0.get(sub, {}):
                return self.wsj0[sub][utt]
        raise InputError(f"mixture {name}: WSJ0 utterance {utt} not found in "
                         f"{'/'.join(whamr.SPLIT_SUBSETS[split])} under WSJ0={self.args.wsj0_dir}")

    def __call__(self, key: str) -> dict:
        a = self.args
        split, name = key.split("/", 1)
        u1, g1, u2, g2 = whamr.parse_mix_name(name)
        s1 = load_audio(self.source(split, u1, name), 16000, utt=u1, resample_to_fs=True)[0]
        s2 = load_audio(self.source(split, u2, name), 16000, utt=u2, resample_to_fs=True)[0]
        npath = os.path.join(a.wham_dir, split, f"{name}.wav")
        noise = load_audio(npath, 16000, utt=name, mono=False, resample_to_fs=True)[0][0]
        if self.rooms:
            if name not in self.rooms[split]:
                raise InputError(f"mixture {name}: no row in reverb_params_{split}.csv")
            spec = whamr.official_room(self.rooms[split][name])
        else:
            spec = whamr.sampled_room(utt_rng(a.seed, "whamr", split, name), a.room)
        rirs, direct, t60 = simulate_rirs(spec, 16000)
        p = self.params[split][name]
        sig = whamr_sources(s1, s2, noise, (g1, g2), p["snr"], rirs, direct, p["start"], a.peak)
        durs = {}
        for rate in self.rates:
            full = version(sig, RATES[rate], "max")  # resampled once; min = its first samples
            n_min = int(round(sig["n_min"] * RATES[rate] / 16000))
            for length in self.lengths:
                v = full if length == "max" else {k: x[:n_min] for k, x in full.items()}
                for signal, x in v.items():
                    save_audio(self.path(rate, length, split, signal, name), x, RATES[rate], subtype=a.subtype)
                durs[f"{rate}_{length}"] = f"{len(v['noise']) / RATES[rate]:.4f}"
        return {"_split": split, "_name": name, "_dur": durs, "utt2t60": f"{spec.t60:.3f} {t60:.3f}",
                "utt2snr": f"{p['snr']:.4f}", "utt2room": spec.to_json()}


def write_clean_dirs(maker: Maker, data_dir: str) -> None:
    for sub, utts in maker.wsj0.items():
        if not utts:
            continue
        rows = {}
        for u, path in utts.items():
            sr, _, n = audio_info(path, utt=u)
            rows[u] = {"wav.scp": os.path.abspath(path), "utt2spk": u[:3], "utt2dur": f"{n / sr:.4f}"}
        write_data_dir(os.path.join(data_dir, sub), rows)
        log.info("%s: %d clean utterances", sub, len(rows))


def merge(maker: Maker) -> None:
    a = maker.args
    rows, skipped = collect_rows(a.out_dir)
    missing = c_sorted(set(maker.keys) - set(rows) - set(skipped))
    if missing:
        raise StageError(f"{len(missing)} of {len(maker.keys)} mixtures were not made, e.g. {missing[:3]}; "
                         "run the jobs again (finished mixtures are skipped)")
    for split in maker.splits:
        srows = {r["_name"]: r for r in rows.values() if r["_split"] == split}
        for rate in maker.rates:
            for length in maker.lengths:
                for mix in MIXTURES:
                    kind, cond = mix.split("_")[1:]
                    out = {}
                    for name, r in srows.items():
                        t = {"wav.scp": maker.path(rate, length, split, mix, name), "utt2spk": name,
                             "utt2dur": r["_dur"][f"{rate}_{length}"], "utt2t60": r["utt2t60"],
                             "utt2room": r["utt2room"]}
                        for k in (1, 2) if kind != "single" else (1,):
                            t[f"spk{k}.scp"] = maker.path(rate, length, split, f"s{k}_{cond}", name)
                            if cond == "reverb":
                                t[f"dereverb{k}.scp"] = maker.path(rate, length, split, f"s{k}_anechoic", name)
                        if kind != "clean":
                            t["noise1.scp"] = maker.path(rate, length, split, "noise", name)
                            t["utt2snr"] = r["utt2snr"]
                        out[name] = t
                    write_data_dir(os.path.join(a.data_dir, f"{split}_{mix}_{length}_{rate}"), out)
        log.info("%s: %d mixtures x %d data dirs", split, len(srows), len(maker.rates) * len(maker.lengths) * 6)
    write_clean_dirs(maker, a.data_dir)
    if skipped:
        write_table(os.path.join(a.data_dir, "whamr_skipped"), skipped)
    save_config(stage_config(a, ignore=NOT_CONFIG), a.out_dir)
    mark_done(a.out_dir, {"mixtures": len(rows), "skipped": len(skipped)})


def run(args) -> None:
    def setup() -> Stage:
        maker = Maker(args)
        return Stage(keys={k: k.split("/")[0] for k in maker.keys}, work=lambda: maker, merge=lambda: merge(maker))

    run_stage(args, args.out_dir, setup, stage_config(args, ignore=NOT_CONFIG), desc=f"whamr job {args.job}")


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
