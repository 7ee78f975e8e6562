#!/usr/bin/env bash
# AVSpeech: an audio-visual clean-speech prior from in-the-wild YouTube clips, tested on
# held-out test clips mixed with the toolkit's noises.
#   ./run.sh                                     # stages 1-8, audio-visual prior
#   ./run.sh --train_config conf/train_ao.yaml   # the audio-only prior
#   ./run.sh --stage 1 --stop_stage 3 --nj 64    # data (sharded over --nj), simulation, dump
# Lips: the box backend, seeded per clip with the CSV face centre (utt2face), then tracked.
set -euo pipefail

train_set=avspeech_train
valid_set=avspeech_valid
test_sets=test_noisy
train_config=conf/train_av.yaml
inference_config="conf/enhance_udiffse.yaml conf/enhance_udiffse_plus.yaml"

./avse.sh \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --train_config "${train_config}" \
    --inference_config "${inference_config}" \
    --lip_backend box \
    --ngpu 1 --gpu_inference true \
    "$@"
