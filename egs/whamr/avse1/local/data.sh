#!/usr/bin/env bash
# Stage 1 of whamr: WHAMR!-style mixtures made with the toolkit's room simulation,
# parallel over --nj and resumable, into ${WHAMR_OUT}/wav{8k,16k}/{min,max}/{tr,cv,tt}/,
# the data dirs <split>_mix_<single|both|clean>_<anechoic|reverb>_<min|max>_<8k|16k>
# and the clean WSJ0 sets si_tr_s, si_dt_05, si_et_05.
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*" >&2; }

nj=8
seed=0
splits="[tr,cv,tt]"
sample_rates="[8k,16k]"
lengths="[min,max]"
max_per_split=       # only the first N mixtures of each split (a quick look); empty: all
room=                # overrides of the sampled rooms, e.g. "{t60:[0.1,0.5]}" (not with WHAMR_PARAMS)
help_message="Usage: local/data.sh [--nj N] [--splits '[tr,cv,tt]'] [--sample_rates '[8k,16k]'] [--lengths '[min,max]'] [--max_per_split N] [--room '{t60:[0.1,1.0]}']"

. ./path.sh
. ./cmd.sh
. ./db.sh
. utils/parse_options.sh
. utils/avse_jobs.sh

if [ -z "${WSJ0}" ] || [ ! -d "${WSJ0}" ]; then
    log "Error: set WSJ0 in db.sh to WSJ0 converted to wav; expected layout [wsj0/]si_tr_s/<spk>/<utt>.wav (and si_dt_05, si_et_05); local/sph2wav.sh converts the .wv1 files"
    exit 1
fi
if [ -z "${WHAM_NOISE}" ] || [ ! -d "${WHAM_NOISE}/metadata" ]; then
    log "Error: set WHAM_NOISE in db.sh to the unzipped wham_noise; expected layout {tr,cv,tt}/<mixture>.wav and metadata/mix_param_meta_{tr,cv,tt}.csv"
    exit 1
fi
if [ -n "${WHAMR_PARAMS}" ] && [ ! -d "${WHAMR_PARAMS}" ]; then
    log "Error: WHAMR_PARAMS=${WHAMR_PARAMS} is not a folder of reverb_params_{tr,cv,tt}.csv (leave it empty to draw rooms)"
    exit 1
fi

mkdir -p "${WHAMR_OUT}"
opts=(--wsj0_dir "${WSJ0}" --wham_dir "${WHAM_NOISE}" --out_dir "${WHAMR_OUT}" --data_dir data
      --splits "${splits}" --sample_rates "${sample_rates}" --lengths "${lengths}" --seed "${seed}")
[ -n "${WHAMR_PARAMS}" ] && opts+=(--reverb_params_dir "${WHAMR_PARAMS}")
[ -n "${max_per_split}" ] && opts+=(--max_per_split "${max_per_split}")
[ -n "${room}" ] && opts+=(--room "${room}")
python -m avse.bin.prep_whamr "${opts[@]}" --list_keys "${WHAMR_OUT}/keys.all"
run_jobs prep_whamr "${nj}" "${WHAMR_OUT}/keys.all" "${WHAMR_OUT}" "${train_cmd}" -- \
    python -m avse.bin.prep_whamr "${opts[@]}"
# prep_whamr validates every mixture dir as it writes it; the prior's sets here:
for d in si_tr_s si_dt_05; do
    utils/validate_data_dir.sh "data/${d}"
done
log "WHAMR! ready: $(ls -d data/*_mix_* | wc -l) mixture data dirs"
