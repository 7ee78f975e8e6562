#!/usr/bin/env bash
# Stage 1 of avspeech: data/avspeech_{train,valid,test} from the CSVs and the downloaded
# clips (sharded over --nj jobs, each streaming the CSVs; resumable), data/avspeech_test_sub
# (the clean side of the simulated test set) and data/noise_test (toolkit noises).
# Missing or undecodable clips are listed in ${work}/report/, never fatal.
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*" >&2; }

nj=8
seed=0
valid_permille=5      # training videos held out for validation (per mille)
test_subset=500       # test clips in the simulated test set
noise_seconds=20      # length of each toolkit noise recording
work=data/local/avspeech
help_message="Usage: local/data.sh [--nj N] [--valid_permille N] [--test_subset N] [--noise_seconds S]"

. ./path.sh
. ./cmd.sh
. ./db.sh
. utils/parse_options.sh

if [ -z "${AVSPEECH}" ] || { [ ! -f "${AVSPEECH}/avspeech_train.csv" ] && [ ! -f "${AVSPEECH}/avspeech_test.csv" ]; }; then
    log "Error: set AVSPEECH in db.sh to the folder holding avspeech_train.csv and/or avspeech_test.csv (lines ytid,start_s,end_s,x,y; no header)"
    exit 1
fi
if [ -z "${AVSPEECH_CLIPS}" ] || [ ! -d "${AVSPEECH_CLIPS}" ]; then
    log "Error: set AVSPEECH_CLIPS in db.sh to the folder of downloaded clips named <ytid>_<start %010.6f>-<end %010.6f>.mp4"
    exit 1
fi

opts=(--clips_dir "${AVSPEECH_CLIPS}" --out_dir "${work}" --data_dir data --nj "${nj}" --seed "${seed}"
      --valid_permille "${valid_permille}" --test_subset "${test_subset}")
[ -f "${AVSPEECH}/avspeech_train.csv" ] && opts+=(--train_csv "${AVSPEECH}/avspeech_train.csv")
[ -f "${AVSPEECH}/avspeech_test.csv" ] && opts+=(--test_csv "${AVSPEECH}/avspeech_test.csv")
if [ -f "${work}/.done" ]; then
    log "${work} is complete, skipping"
else
    mkdir -p "${work}/log"
    ${train_cmd} JOB=1:"${nj}" "${work}/log/prep.JOB.log" \
        python -m avse.bin.prep_avspeech "${opts[@]}" --job JOB --progress false
    python -m avse.bin.prep_avspeech "${opts[@]}" --merge true
fi
log "report: $(cat "${work}/report/summary.json" | tr -d '\n ')"

noise_opts=(--noise_types "[traffic, engine, fan, music, wind, rain, white, pink]")
if [ -f data/avspeech_valid/wav.scp ]; then  # babble and cafe of held-out (validation) talkers
    noise_opts=(--noise_types "[babble, cafe, traffic, engine, fan, music, wind, white]" --speech_dir data/avspeech_valid)
fi
python -m avse.bin.prep_synthetic_noise --out_dir data/noise_test --wav_dir "${work}/noise" "${noise_opts[@]}" \
    --seconds "${noise_seconds}" --seed "$((seed + 1))" --progress false
for d in data/avspeech_train data/avspeech_valid data/avspeech_test data/avspeech_test_sub data/noise_test; do
    [ -f "${d}/wav.scp" ] && utils/validate_data_dir.sh "${d}"
done
log "AVSpeech data ready"
