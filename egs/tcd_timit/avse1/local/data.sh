#!/usr/bin/env bash
# Stage 1 of tcd_timit: data/{train,valid,test} (volunteers' straightcam clips, speaker
# split of this research line), data/test_sub (ten utterances per test speaker) and the
# test-side inputs that db.sh allows: data/test_ntcd (NTCD_TIMIT), data/noise_demand
# (DEMAND), else data/noise_test (the toolkit's procedural noises).
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*" >&2; }

nj=4
seed=0
camera=straightcam       # or 30degcam
subset_per_speaker=10    # utterances per test speaker in test_sub (simulated test sets)
ntcd_snrs=               # e.g. "[-5, 0, 5]"; empty: every SNR folder
work=data/local/tcd_timit  # audio decoded from the mp4s / resampled
noise_seconds=20         # length of each toolkit noise recording (no NTCD_TIMIT, no DEMAND)
help_message="Usage: local/data.sh [--nj N] [--seed N] [--camera straightcam|30degcam] [--subset_per_speaker N] [--ntcd_snrs '[-5, 5]']"

. ./path.sh
. ./cmd.sh
. ./db.sh
. utils/parse_options.sh
. utils/avse_jobs.sh

layout="<TCD_TIMIT>/volunteers/<01M..59F>/Clips/straightcam/<utt>.mp4 (+ optional <TCD_TIMIT>/volunteers/<spk>/audio/<utt>.wav)"
if [ -z "${TCD_TIMIT}" ]; then
    log "Error: set TCD_TIMIT in db.sh to the TCD-TIMIT root; expected layout ${layout}"
    exit 1
fi
if [ ! -d "${TCD_TIMIT}/volunteers" ]; then
    log "Error: TCD_TIMIT=${TCD_TIMIT} has no volunteers/ folder; expected layout ${layout}"
    exit 1
fi
for v in NTCD_TIMIT DEMAND TCD_TIMIT_LIPS; do
    if [ -n "${!v}" ] && [ ! -d "${!v}" ]; then
        log "Error: ${v}=${!v} in db.sh is not a folder (leave it empty when you do not have it)"
        exit 1
    fi
done

mkdir -p "${work}"
opts=(--tcd_dir "${TCD_TIMIT}" --corpus_dir "${work}" --data_dir data --camera "${camera}" --seed "${seed}")
[ -n "${TCD_TIMIT_LIPS}" ] && opts+=(--lips_dir "${TCD_TIMIT_LIPS}")
python -m avse.bin.prep_tcd_timit "${opts[@]}" --list_keys "${work}/keys.all"
run_jobs prep_tcd_timit "${nj}" "${work}/keys.all" "${work}" "${train_cmd}" -- \
    python -m avse.bin.prep_tcd_timit "${opts[@]}"

topts=(--subset_per_speaker "${subset_per_speaker}")
[ -n "${NTCD_TIMIT}" ] && topts+=(--ntcd_dir "${NTCD_TIMIT}")
[ -n "${ntcd_snrs}" ] && topts+=(--ntcd_snrs "${ntcd_snrs}")
[ -n "${DEMAND}" ] && topts+=(--demand_dir "${DEMAND}")
python -m avse.bin.prep_tcd_timit "${opts[@]}" "${topts[@]}" --tests true
dirs="train valid test test_sub"
[ -n "${NTCD_TIMIT}" ] && dirs+=" test_ntcd"
[ -n "${DEMAND}" ] && dirs+=" noise_demand"
if [ -z "${NTCD_TIMIT}" ] && [ -z "${DEMAND}" ]; then
    # babble and cafe from training speakers, who are held apart from the test speakers
    python -m avse.bin.prep_synthetic_noise --out_dir data/noise_test --wav_dir "${work}/noise" \
        --noise_types "[babble, cafe, traffic, engine, fan, music, wind, white]" \
        --speech_dir data/train --seconds "${noise_seconds}" --seed "$((seed + 1))" --progress false
    dirs+=" noise_test"
fi
for d in ${dirs}; do
    utils/validate_data_dir.sh "data/${d}"
done
log "TCD-TIMIT data ready: ${dirs}"
