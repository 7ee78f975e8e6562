#!/usr/bin/env bash
# Stage 1 of mini_av: generate the synthetic audio-visual corpus and its data dirs
# data/{train,valid,test} (speech + mouth video) and data/{noise_train,noise_test}, plus
# data/noise_dev: held-out recordings of the non-stationary types (new instances of the
# procedural noises; babble from training talkers) for choosing the settings of models trained
# on noise (issue D3's noise tracker) without rewarding memorised training recordings, and
# data/noise_train_many: more instances of every training noise type (the corpus's three per
# type are too few for a model that learns noise: issue D3's tracker memorises them), from
# their own seed, babble from training talkers.
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*" >&2; }

size=default   # tiny | default | large
scale=1.0      # multiplies utterances per speaker
nj=4
seed=0
help_message="Usage: local/data.sh [--size tiny|default|large] [--scale F] [--nj N] [--seed N]"

. ./path.sh
. ./cmd.sh
. ./db.sh
. utils/parse_options.sh
. utils/avse_jobs.sh

if [ -z "${MINI_AV:-}" ]; then
    log "Error: set MINI_AV in db.sh to the folder where the generated corpus goes"
    exit 1
fi
corpus=${MINI_AV}/${size}_x${scale}_seed${seed}
mkdir -p "${corpus}"
opts=(--corpus_dir "${corpus}" --data_dir data --size "${size}" --scale "${scale}" --seed "${seed}")
python -m avse.bin.prep_mini_av "${opts[@]}" --list_keys "${corpus}/keys.all"
run_jobs prep_mini_av "${nj}" "${corpus}/keys.all" "${corpus}" "${train_cmd}" -- \
    python -m avse.bin.prep_mini_av "${opts[@]}"
if [ ! -f data/train/wav.scp ]; then  # a corpus made by another recipe dir (same MINI_AV): its data dirs here
    python -m avse.bin.prep_mini_av "${opts[@]}" --merge true
fi
python -m avse.bin.prep_synthetic_noise --out_dir data/noise_dev --wav_dir "${corpus}/noise_dev" \
    --noise_types "[babble, cafe, music, traffic]" --per_type 3 --seconds 12 --speech_dir data/train \
    --seed $((seed + 101))
case "${size}" in tiny) many=1 ;; large) many=40 ;; *) many=20 ;; esac   # recordings per type
python -m avse.bin.prep_synthetic_noise --out_dir data/noise_train_many --wav_dir "${corpus}/noise_train_many" \
    --noise_types "[$(cut -d' ' -f2 data/noise_train/utt2noise | LC_ALL=C sort -u | paste -sd, -)]" \
    --per_type "${many}" --seconds 12 --speech_dir data/train --seed $((seed + 202))
for d in train valid test noise_train noise_test noise_dev noise_train_many; do
    utils/validate_data_dir.sh "data/${d}"
done
log "mini_av ready: $(du -sh "${corpus}" | cut -f1) in ${corpus}"
