#!/usr/bin/env bash
# TCD-TIMIT audio-visual speech enhancement with an unsupervised diffusion prior.
#   ./run.sh                                   # stages 1-8 (audio-only prior, conf/train_ao.yaml)
#   ./run.sh --train_config conf/train_av.yaml # the audio-visual prior
#   ./run.sh --stage 1 --stop_stage 3          # data, simulation, dump
#   ./run.sh --stage 4 --train_config conf/train_vae.yaml \
#       --inference_config "conf/enhance_vae_mcem.yaml conf/enhance_vae_vem.yaml"   # VAE-NMF baseline
#   (conf/train_av_vae.yaml: AV-CVAE; conf/train_rvae.yaml: RVAE with enhance_vae_vem.yaml)
#   ./run.sh --stage 4 --train_config conf/train_av_lrw.yaml   # lip encoder from a released lip-reading
#                                                               # checkpoint (pretrained/, see README)
#   ./run.sh --stage 2 --train_config conf/train_av_feats.yaml  # on your visual features (lip_feats.scp)
# Test sets follow db.sh: test_ntcd with NTCD_TIMIT, test_demand with DEMAND, else
# test_noisy (the toolkit's own noises). Lips: haar on the straightcam video, or none
# when TCD_TIMIT_LIPS points at pre-cropped mouth videos.
set -euo pipefail
. ./db.sh

train_set=train
valid_set=valid
test_sets=""
[ -n "${NTCD_TIMIT}" ] && test_sets+="test_ntcd "
[ -n "${DEMAND}" ] && test_sets+="test_demand "
[ -n "${test_sets}" ] || test_sets=test_noisy
lip_backend=haar
[ -n "${TCD_TIMIT_LIPS}" ] && lip_backend=none
train_config=conf/train_ao.yaml
inference_config="conf/enhance_udiffse.yaml conf/enhance_udiffse_plus.yaml"

./avse.sh \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets% }" \
    --train_config "${train_config}" \
    --inference_config "${inference_config}" \
    --lip_backend "${lip_backend}" \
    --ngpu 1 --gpu_inference true \
    "$@"
