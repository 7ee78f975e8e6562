"""Generate the mini_av synthetic audio-visual corpus (stage 1 of egs/mini_av).

Run as a resumable, parallel job set, like every stage::

    python -m avse.bin.prep_mini_av --corpus_dir C --data_dir data --list_keys C/keys
    utils/split_scp.pl C/keys C/log/keys.{1..N}
    $cmd JOB=1:N C/log/gen.JOB.log python -m avse.bin.prep_mini_av ... --key_file C/log/keys.JOB --job JOB
    python -m avse.bin.prep_mini_av ... --merge true

Writes ``C/wav/*.wav`` (16 kHz speech), ``C/video/*.mp4`` (25 fps 88x88 mouth),
``C/noise/*.wav`` and the data dirs ``data/{train,valid,test}`` (wav.scp, video.scp,
utt2spk, spk2utt, text, utt2dur, spk_info.json) and ``data/{noise_train,noise_test}``
(wav.scp, utt2noise, noise_desc).
"""
import argparse
import json
import logging
import os
import sys

import numpy as np

from avse.utils.cli import run_main
from avse.corpus.synthetic import mini_av
from avse.data.uttjobs import Stage, collect_rows, run_stage, write_data_dir
from avse.errors import AvseError
from avse.io.audio import rms, save_audio
from avse.io.scp import write_table
from avse.utils.config import add_job_args, save_config, to_dict
from avse.utils.fileio import atomic_open, mark_done
from avse.utils.seeding import stable_hash, utt_rng

log = logging.getLogger("avse.prep_mini_av")
SPEECH_PEAK = 0.7
NOISE_RMS = 0.1


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus_dir", required=True, help="where audio and video files go")
    p.add_argument("--data_dir", required=True, help="where the data dirs go")
    p.add_argument("--size", default="default", choices=sorted(mini_av.SIZES))
    p.add_argument("--scale", type=float, default=1.0, help="multiply utterances per speaker")
    p.add_argument("--noise_types", nargs="+", default=None, help="default: every registered type")
    p.add_argument("--list_keys", default=None, help="write the item keys to this file and exit")
    add_job_args(p)
    return p


def generate_utt(plan: mini_av.Plan, item: mini_av.UttItem, corpus_dir: str) -> dict:
    from avse.corpus.synthetic.espeak import synthesize
    from avse.corpus.synthetic.mouth import MouthAppearance, render_utterance
    from avse.io.video import write_video

    spk = plan.speakers[item.speaker]
    syn = synthesize(item.text, voice=spk.voice, rate=spk.rate, pitch=spk.pitch,
                     pitch_range=spk.pitch_range, fs=mini_av.FS)
    audio = syn.audio * (SPEECH_PEAK / max(float(np.max(np.abs(syn.audio))), 1e-8))
    appearance = MouthAppearance.sample(np.random.default_rng(spk.appearance_seed))
    frames = render_utterance(syn.phonemes, len(audio), mini_av.FS, appearance,
                              seed=stable_hash(plan.seed, "video", item.key))
    wav = os.path.join(corpus_dir, "wav", f"{item.key}.wav")
    mp4 = os.path.join(corpus_dir, "video", f"{item.key}.mp4")
    ali = os.path.join(corpus_dir, "phones", f"{item.key}.txt")
    write_video(mp4, frames, fps=25.0)
    with atomic_open(ali) as f:
        f.writelines(f"{e.start:.3f} {e.end:.3f} {e.phoneme}\n" for e in syn.phonemes)
    save_audio(wav, audio, mini_av.FS)  # last: its presence means the item is complete
    return {"_split": item.split, "wav.scp": wav, "video.scp": mp4, "utt2spk": item.speaker,
            "text": item.text, "utt2dur": f"{len(audio) / mini_av.FS:.4f}", "utt2phones": ali}


def generate_noise_item(plan: mini_av.Plan, item: mini_av.NoiseItem, corpus_dir: str) -> dict:
    from avse.corpus.synthetic.noise import generate_noise

    resources = {}
    if item.noise_type in mini_av.BABBLE_LIKE:
        resources["speech_pool"] = mini_av.babble_pool(plan, item)
    rng = utt_rng(plan.seed, "noise", item.key)
    x = generate_noise(item.noise_type, item.seconds, mini_av.FS, rng, **resources)
    x = x * (NOISE_RMS / max(rms(x), 1e-8))
    peak = float(np.max(np.abs(x)))
    if peak > 0.99:  # rare impulsive noises: keep them unclipped
        x = x * (0.99 / peak)
    path = os.path.join(corpus_dir, "noise", f"{item.key}.wav")
    save_audio(path, x, mini_av.FS)
    return {"_split": item.split, "wav.scp": path, "utt2noise": item.noise_type,
            "utt2spk": item.noise_type, "utt2dur": f"{len(x) / mini_av.FS:.4f}"}


def merge(plan: mini_av.Plan, args) -> None:
    from avse.corpus.synthetic.noise import NOISE_DESCRIPTIONS
    from avse.corpus.synthetic.speakers import speaker_to_dict

    rows, skipped = collect_rows(args.corpus_dir)
    missing = set(plan.items()) - set(rows) - set(skipped)
    if missing:
        raise AvseError(f"{len(missing)} items were not generated, e.g. {sorted(missing)[:3]}; run the jobs again")
    by_split = {}
    for key, r in rows.items():
        by_split.setdefault(r["_split"], {})[key] = r
    types = sorted({n.noise_type for n in plan.noises})
    for split, srows in sorted(by_split.items()):
        out = os.path.join(args.data_dir, split)
        extra = {"noise_desc": {t: NOISE_DESCRIPTIONS[t] for t in types}} if split.startswith("noise") else None
        write_data_dir(out, srows, extra)
        if not split.startswith("noise"):
            info = {s: speaker_to_dict(plan.speakers[s]) for s in plan.split_speakers[split]}
            with atomic_open(os.path.join(out, "spk_info.json")) as f:
                json.dump(info, f, indent=1, sort_keys=True)
        log.info("%s: %d items", out, len(srows))
    if skipped:
        write_table(os.path.join(args.data_dir, "mini_av_skipped"), skipped)
    save_config(args, args.corpus_dir)
    mark_done(args.corpus_dir, {"items": len(rows), "size": args.size, "seed": args.seed})


def run(args) -> None:
    def setup() -> Stage:
        plan = mini_av.make_plan(args.size, args.seed, args.scale, args.noise_types)
        items = plan.items()

        def fn(key):
            item = items[key]
            if isinstance(item, mini_av.UttItem):
                return generate_utt(plan, item, args.corpus_dir)
            return generate_noise_item(plan, item, args.corpus_dir)

        return Stage(keys={k: type(v).__name__ for k, v in items.items()}, work=lambda: fn,
                     merge=lambda: merge(plan, args))

    cfg = {k: v for k, v in to_dict(args).items() if k in ("size", "scale", "seed", "noise_types")}
    # a corpus made by another recipe dir is done: --merge true writes its data dirs here
    run_stage(args, args.corpus_dir, setup, cfg, desc=f"mini_av job {args.job}", merge_when_done=True)


def main(argv=None) -> int:
    return run_main(get_parser(), run, argv, log)


if __name__ == "__main__":
    sys.exit(main())
