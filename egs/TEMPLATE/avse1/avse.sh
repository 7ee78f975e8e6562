#!/usr/bin/env bash
# Recipe template shared by every egs/<corpus>/avse1 (symlinked there as avse.sh).
# Stages (each a few lines calling python -m avse.bin.<verb>; logic lives in Python):
#   1 data prep (local/data.sh)        2 room/noise simulation of test sets
#   3 audio dump + lip arrays           4 diffusion-prior training
#   5 unsupervised inference            6 scoring + RESULTS.md
#   7 pack the trained model            8 listening page (HTML) of the scored systems
# Re-running a stage skips finished work; a half-written output is never taken as done.
set -euo pipefail

log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*" >&2
}
min() { if [ "$1" -lt "$2" ]; then echo "$1"; else echo "$2"; fi; }
SECONDS=0

# General
stage=1              # first stage to run
stop_stage=8         # last stage to run
nj=4                 # parallel jobs for data work
inference_nj=4       # parallel jobs for inference
ngpu=0               # GPUs for training (>1: torchrun DDP)
gpu_inference=false  # run inference on a GPU
fs=16000             # working sample rate (Hz)
dumpdir=dump         # features and lips
expdir=exp           # models, enhanced audio, scores
seed=0

# Data
local_data_opts=     # options passed to local/data.sh
train_set=           # clean speech for the prior
valid_set=           # clean speech for the validation loss
test_sets=           # test sets; one with conf/simulate/<name>.yaml is simulated in stage 2
sim_conf_dir=conf/simulate
lip_backend=none     # lip extraction backend for video.scp (and video<k>.scp of other talkers); null: no lips
lip_conf=            # YAML mapping of lip backend options, e.g. "{mouth_y: 0.8}"

# Training
train_config=        # YAML of avse.bin.train
prior_tag=           # experiment name; default: from the train config's name
train_args=          # extra flags for avse.bin.train (the prior and the --fallback_config prior)
skip_train=false     # skip stage 4 (use an existing model)
lip_pretrain_config= # YAML of avse.bin.train_lip_encoder: pretrain an AV prior's lip encoder first
lip_pretrain_args=   # extra flags for avse.bin.train_lip_encoder
fallback_config=     # YAML of avse.bin.train: stage 4 also trains this prior (e.g. the audio-only one) in
                     # ${expdir}/<its name>, kept if already trained: the fallback score of an AV prior's
                     # lip guidance where the video is missing or unreliable (lip_fallback_model)
lip_rel_train=false  # stage 4 also trains the lip-reliability network on the training lips -> ${expdir}/lip_rel
lip_rel_args=        # extra flags for avse.bin.train_lip_rel

# Inference and scoring
inference_config=    # one or more YAMLs of avse.bin.enhance (space separated); CONFIG:SET1,SET2
                     # runs that config on those test sets only (default: --inference_sets)
inference_tag=       # with a single config: its tag (default: the config's name)
inference_args=      # extra flags for avse.bin.enhance
inference_model=model.pt
inference_sets=      # test sets to enhance in stage 5 (default: all --test_sets; stage 6 scores all)
scoring_metrics="si_sdr pesq_wb pesq_nb pesq_nb_raw estoi"
score_ref=auto       # reference of stage 6: spk (spk1.scp), dereverb (dereverb1.scp: the dry
                     # source of a reverberant set) or auto (dereverb1.scp where the set has one)
pack_default=        # stage 7: the inference config that avse-enhance uses by default (its name,
                     # e.g. udiffse_plus for conf/enhance_udiffse_plus.yaml; not among them: the first)

# Noise-aware conditioning (issue D3; off unless --noise_embed_config is given)
noise_embed_config=  # YAML of avse.bin.train_noise_embed: stage 4 also trains the contrastive noise
                     # embedding on data/${noise_embed_train} -> ${expdir}/noise_embed/model.pt and measures
                     # cross-modal retrieval on data/${noise_embed_test}
noise_embed_args=    # extra flags for avse.bin.train_noise_embed
noise_embed_train=noise_train
noise_embed_test=noise_test
noise_embed_sets=    # test sets given noise conditions (text, image, clip) at the start of stage 5:
                     # ${dumpdir}/raw/<set>_cond, enhanced by configs listed as CONFIG:<set>_cond, scored in stage 6
noise_tracker_config=  # YAML of avse.bin.train_noise_tracker: stage 4 also trains the learned noise tracker
                       # (noise: tracker) on data/${train_set} speech + data/${noise_tracker_train} noise ->
                       # ${expdir}/noise_tracker/model.pt, conditioned on the noise embedding where there is one
noise_tracker_train=   # noise data dir of the tracker (empty: ${noise_embed_train})
noise_tracker_args=    # extra flags for avse.bin.train_noise_tracker

# Listening page (stage 8)
listening_opts=      # extra flags for avse.bin.listening_page, e.g. "--max_utts 10 --audio_format wav"

help_message=$(cat <<EOF2
Usage: $0 --train_set <name> --valid_set <name> --test_sets "<names>" [options]
  --stage/--stop_stage N    stages to run (1..8), now ${stage}..${stop_stage}
  --nj/--inference_nj N     parallel jobs (data work / inference)
  --ngpu N                  GPUs for training; >1 runs torchrun DDP
  --gpu_inference bool      inference on a GPU
  --fs Hz                   working sample rate
  --train_set/--valid_set/--test_sets
  --dumpdir/--expdir DIR
  --train_config/--inference_config YAML, --inference_tag, --prior_tag
  --inference_sets "<names>" test sets to enhance (default: --test_sets)
  --inference_config "A.yaml B.yaml:set1,set2"  configs of stage 5 (B only on set1, set2)
  --score_ref auto|spk|dereverb  scoring reference (auto: dereverb1.scp where present)
  --pack_default NAME       default method of the packed model (stage 7; default: the first config)
  --train_args/--inference_args "flags"   extra flags (every YAML key is a flag)
  --skip_train bool         reuse an existing model
  --lip_pretrain_config YAML  pretrain the lip encoder of an AV prior in stage 4 (its objective: phones or sync)
  --lip_pretrain_args "flags" extra flags for avse.bin.train_lip_encoder
  --fallback_config YAML    also train this prior in stage 4 (the audio-only fallback of lip guidance)
  --lip_rel_train bool      also train the lip-reliability network in stage 4 (${expdir}/lip_rel)
  --lip_rel_args "flags"    extra flags for avse.bin.train_lip_rel
  --noise_embed_config YAML  train the noise embedding in stage 4 (avse.bin.train_noise_embed)
  --noise_embed_sets "<names>" test sets conditioned (text/image/clip) into <set>_cond in stage 5
  --noise_tracker_config YAML  train the noise tracker in stage 4 (avse.bin.train_noise_tracker)
  --noise_tracker_train DIR   noise data dir of the tracker (default: --noise_embed_train's)
  --lip_backend NAME|null   lip extraction for video.scp and video<k>.scp (none, haar, box)
  --lip_conf "{...}"        lip backend options (YAML mapping)
  --local_data_opts "..."   options of local/data.sh
  --listening_opts "flags"  extra flags for the listening page of stage 8 (avse.bin.listening_page)
EOF2
)

log "$0 $*"
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
. utils/avse_jobs.sh

[ $# -ne 0 ] && { log "unexpected arguments: $*"; echo "${help_message}"; exit 2; }
[ -z "${train_set}" ] && { log "--train_set is required"; exit 2; }
[ -z "${test_sets}" ] && { log "--test_sets is required"; exit 2; }
[ -z "${prior_tag}" ] && [ -n "${train_config}" ] && prior_tag=$(basename "${train_config}" .yaml)
prior_tag=${prior_tag:-prior}
prior_dir=${expdir}/${prior_tag}

need() {  # need <path> <what> : a stage started before its inputs exist
    [ -e "$1" ] || { log "Error: $1 not found: $2"; exit 1; }
}

if [ ${stage} -le 1 ] && [ ${stop_stage} -ge 1 ]; then
    log "Stage 1: data preparation (local/data.sh ${local_data_opts})"
    need local/data.sh "this recipe has no data preparation script"
    local/data.sh ${local_data_opts}
fi

if [ ${stage} -le 2 ] && [ ${stop_stage} -ge 2 ]; then
    log "Stage 2: room and noise simulation"
    for dset in ${test_sets}; do
        conf=${sim_conf_dir}/${dset}.yaml
        if [ ! -f "${conf}" ]; then log "${dset}: no ${conf}, not simulated"; continue; fi
        out=data/${dset}
        mkdir -p "${out}"
        python -m avse.bin.simulate --config "${conf}" --out_dir "${out}" --seed "${seed}" \
            --list_keys "${out}/keys.all"
        run_jobs simulate "${nj}" "${out}/keys.all" "${out}" "${train_cmd}" -- \
            python -m avse.bin.simulate --config "${conf}" --out_dir "${out}" --seed "${seed}"
    done
fi

if [ ${stage} -le 3 ] && [ ${stop_stage} -ge 3 ]; then
    log "Stage 3: audio at ${fs} Hz and lips into ${dumpdir}/raw"
    for dset in ${train_set} ${valid_set} ${test_sets}; do
        need "data/${dset}/wav.scp" "run stages 1-2 first"
        out=${dumpdir}/raw/${dset}
        run_jobs dump "${nj}" "data/${dset}/wav.scp" "${out}" "${train_cmd}" -- \
            python -m avse.bin.dump --data_dir "data/${dset}" --out_dir "${out}" --fs "${fs}" \
                --lip_backend "${lip_backend}" ${lip_conf:+--lip_conf "${lip_conf}"}
    done
fi

if [ ${stage} -le 4 ] && [ ${stop_stage} -ge 4 ] && ! "${skip_train}"; then
    log "Stage 4: prior training -> ${prior_dir}"
    need "${dumpdir}/raw/${train_set}/wav.scp" "run stage 3 first"
    need "${train_config}" "--train_config is required for training"
    launcher=(python)
    [ "${ngpu}" -gt 1 ] && launcher=(torchrun --standalone --nproc_per_node "${ngpu}")
    mkdir -p "${prior_dir}"
    lip_init=()
    if [ -n "${lip_pretrain_config}" ]; then
        lip_dir=${expdir}/$(basename "${lip_pretrain_config}" .yaml)
        log "Stage 4: lip-encoder pretraining -> ${lip_dir}"
        lip_device=cpu
        [ "${ngpu}" -gt 0 ] && lip_device=cuda
        mkdir -p "${lip_dir}"
        ${cuda_cmd} --gpu "$(min "${ngpu}" 1)" --num-threads "${nj}" "${lip_dir}/train.log" \
            python -m avse.bin.train_lip_encoder --config "${lip_pretrain_config}" \
                --train_dir "${dumpdir}/raw/${train_set}" \
                ${valid_set:+--valid_dir "${dumpdir}/raw/${valid_set}"} \
                --out_dir "${lip_dir}" --fs "${fs}" --seed "${seed}" --device "${lip_device}" --progress false \
                ${lip_pretrain_args}
        lip_init=(--lip_encoder_init "${lip_dir}/lip_encoder.pt")
    fi
    ${cuda_cmd} --gpu "${ngpu}" --num-threads "${nj}" "${prior_dir}/train.log" \
        "${launcher[@]}" -m avse.bin.train --config "${train_config}" \
            --train_dir "${dumpdir}/raw/${train_set}" \
            ${valid_set:+--valid_dir "${dumpdir}/raw/${valid_set}"} \
            --out_dir "${prior_dir}" --fs "${fs}" --ngpu "${ngpu}" --seed "${seed}" --resume true \
            ${lip_init[@]+"${lip_init[@]}"} ${train_args}
    if [ -n "${fallback_config}" ]; then
        fb_dir=${expdir}/$(basename "${fallback_config}" .yaml)
        log "Stage 4: fallback prior -> ${fb_dir}"
        mkdir -p "${fb_dir}"
        ${cuda_cmd} --gpu "${ngpu}" --num-threads "${nj}" "${fb_dir}/train.log" \
            "${launcher[@]}" -m avse.bin.train --config "${fallback_config}" \
                --train_dir "${dumpdir}/raw/${train_set}" \
                ${valid_set:+--valid_dir "${dumpdir}/raw/${valid_set}"} \
                --out_dir "${fb_dir}" --fs "${fs}" --ngpu "${ngpu}" --seed "${seed}" --resume true ${train_args}
    fi
    if "${lip_rel_train}"; then
        need "${dumpdir}/raw/${train_set}/lip.scp" "the lip-reliability network trains on lips: dump them in stage 3"
        log "Stage 4: lip-reliability network -> ${expdir}/lip_rel"
        mkdir -p "${expdir}/lip_rel"
        ${train_cmd} --num-threads "${nj}" "${expdir}/lip_rel/train.log" \
            python -m avse.bin.train_lip_rel --lip_scp "${dumpdir}/raw/${train_set}/lip.scp" \
                --out_dir "${expdir}/lip_rel" --seed "${seed}" ${lip_rel_args}
    fi
fi

noise_embed_dir=${expdir}/noise_embed
if [ ${stage} -le 4 ] && [ ${stop_stage} -ge 4 ] && [ -n "${noise_embed_config}" ]; then
    log "Stage 4: noise embedding -> ${noise_embed_dir}"
    need "data/${noise_embed_train}/wav.scp" "run stage 1 first (the noise recordings)"
    mkdir -p "${noise_embed_dir}"
    if [ ! -f "${noise_embed_dir}/model.pt" ]; then
        ${train_cmd} --num-threads 1 "${noise_embed_dir}/train.log" \
            python -m avse.bin.train_noise_embed --config "${noise_embed_config}" \
                --noise_dir "data/${noise_embed_train}" --out_dir "${noise_embed_dir}" --fs "${fs}" --seed "${seed}" ${noise_embed_args}
    fi
    python -m avse.bin.prep_noise_embed --noise_dir "data/${noise_embed_test}" \
        --out_dir "data/noise_embed_${noise_embed_test}" --item_dir "${noise_embed_dir}/items" --fs "${fs}"
    python -m avse.bin.noise_retrieval --model "${noise_embed_dir}/model.pt" \
        --data_dir "data/noise_embed_${noise_embed_test}" | tee "${noise_embed_dir}/retrieval.txt"
fi

noise_tracker_dir=${expdir}/noise_tracker
if [ ${stage} -le 4 ] && [ ${stop_stage} -ge 4 ] && [ -n "${noise_tracker_config}" ]; then
    log "Stage 4: noise tracker -> ${noise_tracker_dir}"
    noise_tracker_train=${noise_tracker_train:-${noise_embed_train}}
    need "data/${noise_tracker_train}/wav.scp" "run stage 1 first (the noise recordings)"
    embed_flags=
    if [ -n "${noise_embed_config}" ]; then
        need "${noise_embed_dir}/model.pt" "train the noise embedding first"
        embed_flags="--embed_model ${noise_embed_dir}/model.pt"
    fi
    mkdir -p "${noise_tracker_dir}"
    if [ ! -f "${noise_tracker_dir}/model.pt" ]; then
        ${train_cmd} --num-threads 2 "${noise_tracker_dir}/train.log" \
            python -m avse.bin.train_noise_tracker --config "${noise_tracker_config}" \
                --speech_dir "data/${train_set}" --noise_dir "data/${noise_tracker_train}" ${embed_flags} \
                --out_dir "${noise_tracker_dir}" --fs "${fs}" --seed "${seed}" --num_threads 2 ${noise_tracker_args}
    fi
fi

# inference configs, their tags and test sets: CONFIG or CONFIG:SET1,SET2
configs=(); tags=(); config_sets=()
for c in ${inference_config}; do
    sets=${inference_sets:-${test_sets}}
    if [[ "${c}" == *:* ]]; then sets=${c#*:}; sets=${sets//,/ }; c=${c%%:*}; fi
    configs+=("${c}"); tags+=("$(basename "${c}" .yaml)"); config_sets+=("${sets}")
done
if [ -n "${inference_tag}" ]; then
    [ ${#tags[@]} -eq 1 ] || { log "--inference_tag needs exactly one --inference_config"; exit 2; }
    tags=("${inference_tag}")
fi

if [ ${stage} -le 5 ] && [ ${stop_stage} -ge 5 ]; then
    log "Stage 5: unsupervised inference with ${prior_dir}/${inference_model}"
    need "${prior_dir}/${inference_model}" "train the prior first (stage 4)"
    [ -n "${inference_config}" ] || { log "--inference_config is required"; exit 2; }
    device=cpu; gpu=0
    "${gpu_inference}" && { device=cuda; gpu=1; }
    for dset in ${noise_embed_sets}; do
        out=${dumpdir}/raw/${dset}_cond
        [ -f "${out}/noise_embed_clip.scp" ] && continue
        need "${noise_embed_dir}/model.pt" "train the noise embedding first (stage 4 with --noise_embed_config)"
        log "Stage 5: noise conditions of ${dset} -> ${out}"
        python -m avse.bin.noise_condition --model "${noise_embed_dir}/model.pt" \
            --data_dir "${dumpdir}/raw/${dset}" --out_dir "${out}" --noise_dir "data/${noise_embed_test}" \
            --modalities "[text, image, clip]"
    done
    for i in "${!configs[@]}"; do
        c=${configs[$i]}; tag=${tags[$i]}
        need "${c}" "inference config"
        for dset in ${config_sets[$i]}; do
            data=${dumpdir}/raw/${dset}
            need "${data}/wav.scp" "run stage 3 first"
            out=${prior_dir}/${tag}/${dset}
            run_jobs enhance "${inference_nj}" "${data}/wav.scp" "${out}" "${decode_cmd} --gpu ${gpu}" -- \
                python -m avse.bin.enhance --config "${c}" --model "${prior_dir}/${inference_model}" \
                    --data_dir "${data}" --out_dir "${out}" --device "${device}" --seed "${seed}" ${inference_args}
        done
    done
fi

if [ ${stage} -le 6 ] && [ ${stop_stage} -ge 6 ]; then
    log "Stage 6: scoring (${scoring_metrics})"
    cond_sets=
    for dset in ${noise_embed_sets}; do cond_sets+=" ${dset}_cond"; done
    for dset in ${test_sets} ${cond_sets}; do
        data=${dumpdir}/raw/${dset}
        ref=spk1.scp
        case "${score_ref}" in
            auto) [ -f "${data}/dereverb1.scp" ] && ref=dereverb1.scp ;;
            dereverb) ref=dereverb1.scp ;;
            spk) ;;
            *) log "--score_ref must be auto, spk or dereverb, got '${score_ref}'"; exit 2 ;;
        esac
        need "${data}/${ref}" "scoring needs reference speech (${ref}); run stages 2-3"
        systems=("noisy:${data}/wav.scp:${expdir}/noisy/${dset}")
        for tag in "${tags[@]}"; do
            d=${prior_dir}/${tag}/${dset}
            if [ -f "${d}/wav.scp" ]; then systems+=("${tag}:${d}/wav.scp:${d}"); fi
        done
        for s in "${systems[@]}"; do
            IFS=: read -r name inf dir <<< "${s}"
            timing=()
            [ -f "${dir}/timing.json" ] && timing=(--timing_json "${dir}/timing.json")
            ${train_cmd} --num-threads "${nj}" "${dir}/score/log/score.log" \
                python -m avse.bin.score --ref_scp "${data}/${ref}" --inf_scp "${inf}" \
                    --out_dir "${dir}/score" --metrics ${scoring_metrics} --nj "${nj}" \
                    --data_dir "${data}" --system "${name}" --test_set "${dset}" "${timing[@]}"
            # sources bound to their talkers (an AV prior with per-source lips; sources.json):
            # scored as they are above, and permutation-invariantly as the row <name>_pit
            if [ -f "${dir}/sources.json" ] && grep -q '"assignment": "fixed"' "${dir}/sources.json"; then
                ${train_cmd} --num-threads "${nj}" "${dir}/pit/score/log/score.log" \
                    python -m avse.bin.score --ref_scp "${data}/${ref}" --inf_scp "${inf}" \
                        --out_dir "${dir}/pit/score" --metrics ${scoring_metrics} --nj "${nj}" \
                        --data_dir "${data}" --system "${name}_pit" --test_set "${dset}" --assignment pit \
                        "${timing[@]}"
            fi
        done
    done
    python -m avse.bin.make_results --exp_dir "${expdir}" --out "${expdir}/RESULTS.md" \
        --recipe "$(basename "$(dirname "$PWD")")/$(basename "$PWD")"
    cp "${expdir}/RESULTS.md" RESULTS.md
    log "Results in RESULTS.md"
fi

if [ ${stage} -le 7 ] && [ ${stop_stage} -ge 7 ]; then
    log "Stage 7: pack the model"
    need "${prior_dir}/${inference_model}" "train the prior first (stage 4)"
    # the inference configs are recorded as method settings: avse-enhance needs only the archive
    default=()
    for c in ${configs[@]+"${configs[@]}"}; do
        n=$(basename "${c}" .yaml); n=${n#enhance_}
        [ "${n}" != "${pack_default}" ] || default=(--default_enhance "${n}")
    done
    python -m avse.bin.pack --exp_dir "${prior_dir}" --model "${inference_model}" \
        --enhance_config ${configs[@]+"${configs[@]}"} ${default[@]+"${default[@]}"} \
        --extra RESULTS.md --out "${prior_dir}/packed.tar.gz"
fi

if [ ${stage} -le 8 ] && [ ${stop_stage} -ge 8 ]; then
    log "Stage 8: listening page -> ${expdir}/listening/index.html"
    python -m avse.bin.listening_page --exp_dir "${expdir}" --out_dir "${expdir}/listening" \
        --title "Listening page: $(basename "$(dirname "$PWD")")/$(basename "$PWD")" ${listening_opts}
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
