"""Stage 2: noisy (and optionally reverberant, multi-talker) mixtures of clean speech.

    python -m avse.bin.simulate --config conf/simulate/test_noisy.yaml --out_dir data/test_noisy \\
        --list_keys data/test_noisy/keys.all            # output keys, then exit
    python -m avse.bin.simulate --config ... --out_dir data/test_noisy \\
        --key_file keys.JOB --job JOB                    # one job of several
    python -m avse.bin.simulate --config ... --out_dir data/test_noisy --merge true

Inputs: ``--data_dir`` (clean speech: ``wav.scp``, ``utt2spk``, optional
``video.scp``/``text``) and ``--noise_dir`` (``wav.scp`` of noise recordings and
``utt2noise``: the noise type of each; optional ``noise_desc``: type -> text).

Output keys: with ``--snr_mode all`` every utterance at every SNR of ``--snrs``, as
``<utt>_snr<+NN|-NN>``; with ``cycle`` one SNR per utterance, the SNRs of ``--snrs``
taken in turn over the sorted utterances (balanced conditions at a fraction of the
size), same key format; with ``random`` one SNR per utterance drawn uniformly from
``[min(snrs), max(snrs)]`` (rounded to 0.01 dB), key unchanged. Each output
utterance draws everything (SNR, noise type and recording, noise offset,
interferers and their SIRs, room) from ``utt_rng(seed, key)``: the output is the same
whatever the number of jobs and however the keys are split.

Per utterance: a noise type uniformly among ``--noise_types`` (default: all in the
noise dir), a recording of that type uniformly, a segment at a random offset;
with ``--n_speakers K > 1``, K-1 interferers from other speakers of the data dir at
SIRs uniform in ``[min(sirs), max(sirs)]``; with ``--room`` (a mapping of ranges, see
``avse.simulate.room``; ``null``: anechoic) a shoebox room. The SNR is that of all
speech images to the noise on the reference microphone (``avse.simulate.mix``).

Outputs under ``--out_dir``: ``wav/`` (mixture), ``spk1/`` (target: the dry source,
or its direct-path image in a room), ``spk2/``.. (interferers), ``noise1/``, and with
a room ``reverb1/`` (reverberant target image) and ``rir1/<key>.npy`` ((M, L) float32,
target to every microphone); tables ``wav.scp spk1.scp [spk2.scp] noise1.scp
[reverb1.scp rir1.scp utt2t60 utt2room] utt2snr [utt2sir] utt2noise utt2gain
utt2source utt2spk utt2dur`` plus ``text``/``video.scp``/``utt2face``/``lip_feats.scp``
copied from the source utterance, for every interferer i = 2..K its ``video<i>.scp``/
``utt2face<i>``/``lip_feats<i>.scp`` (the per-source names of :mod:`avse.data.sources`:
stage 3 turns ``video<i>.scp`` into ``lip<i>.scp``, the lips an audio-visual prior
separates talker i with), and ``noise_desc``. ``utt2t60`` is ``<target> <measured>`` (s);
``utt2gain`` the joint anti-clipping factor; ``utt2source`` ``<utt> <noise
recording> <noise offset s> [<interferer utt>..]``. With several microphones only
the reference microphone is written unless ``--channels all``.
"""
import argparse
import logging
import os
import shutil
import sys

from avse.data.uttjobs import Stage, collect_rows, merge_jobs, run_stage, stage_config
from avse.errors import InputError, StageError
from avse.io.scp import c_sorted
from avse.simulate.simulator import Simulator
from avse.utils.cli import run_main
from avse.utils.config import add_job_args, none_or, save_config, yaml_value

log = logging.getLogger("avse.simulate")
#: options besides the job options that do not change the outputs
NOT_CONFIG = ("list_keys",)



def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=None, help="clean speech data dir (stage 1)")
    p.add_argument("--noise_dir", default=None, help="noise data dir: wav.scp, utt2noise[, noise_desc]")
    p.add_argument("--out_dir", default=None, help="output data dir")
    p.add_argument("--fs", type=none_or(int), default=None,
                   help="sample rate of every input (Hz); default: the rate of the first utterance of "
                        "--data_dir (the corpus's own rate; stage 3 resamples to the working rate)")
    p.add_argument("--snrs", type=yaml_value, default=[-5, 0, 5], help="SNRs in dB (YAML list)")
    p.add_argument("--snr_mode", default="all", choices=["all", "cycle", "random"],
                   help="all: every utterance at every SNR; cycle: the SNRs in turn, one per utterance; "
                        "random: one SNR per utterance in [min, max]")
    p.add_argument("--noise_types", type=yaml_value, default=None,
                   help="noise types to use (YAML list or comma-separated); default: all in noise_dir")
    p.add_argument("--room", type=yaml_value, default=None,
                   help="room ranges (YAML mapping, see avse.simulate.room); null: anechoic")
    p.add_argument("--n_speakers", type=int, default=1, help="talkers per mixture (target + interferers)")
    p.add_argument("--sirs", type=yaml_value, default=[0], help="SIR range of interferers in dB (YAML list)")
    p.add_argument("--peak", type=float, default=0.9, help="largest absolute sample value of any output")
    p.add_argument("--channels", default="ref", choices=["ref", "all"],
                   help="with several microphones: write the reference microphone or all")
    p.add_argument("--subtype", default="PCM_16", choices=["PCM_16", "PCM_24", "FLOAT"],
                   help="wav sample format of the outputs")
    p.add_argument("--noise_crossfade", type=float, default=0.05,
                   help="crossfade (s) where a short noise is looped")
    p.add_argument("--list_keys", type=none_or(str), default=None,
                   help="write the output keys (sorted) to this file and exit")
    add_job_args(p)
    return p


# ------------------------------------------------------------------- main
def simulate(args) -> None:
    """Run the stage for parsed ``args`` (raises :class:`AvseError`)."""
    if not args.list_keys and not args.out_dir:
        raise InputError("--out_dir is required")

    def setup() -> Stage:
        sim = Simulator(args)
        return Stage(keys=sim.keys, work=lambda: sim, merge=lambda: finish(args, sim))

    run_stage(args, args.out_dir, setup, stage_config(args, ignore=NOT_CONFIG),
              desc=f"simulate {os.path.basename(os.path.normpath(args.out_dir or ''))}")


def finish(args, sim: Simulator) -> None:
    """Merge the jobs' rows into the data dir; the done marker comes last."""
    for name in os.listdir(args.data_dir):  # dir-level metadata of the speech
        if name.endswith(".json"):
            shutil.copy(os.path.join(args.data_dir, name), os.path.join(args.out_dir, name))
    rows, skipped = collect_rows(args.out_dir)
    missing = c_sorted(set(sim.keys) - set(rows) - set(skipped))
    if missing:
        raise StageError(f"{args.out_dir}: {len(missing)} of {len(sim.keys)} utterances were not simulated, "
                         f"e.g. {missing[:3]}; run the jobs again (finished ones are skipped)")
    save_config(stage_config(args, ignore=NOT_CONFIG), args.out_dir)
    extra = {"noise_desc": sim.noise_desc} if sim.noise_desc else None
    merge_jobs(args.out_dir, extra=extra, info=stage_config(args, ignore=NOT_CONFIG))


def main(argv=None) -> int:
    return run_main(get_parser(), simulate, argv, log)


if __name__ == "__main__":
    sys.exit(main())
