#!/usr/bin/env bash
# mini_av: the synthetic audio-visual corpus, end to end on a laptop CPU.
#   ./run.sh                                  # stages 1-7 at the default size
#   ./run.sh --stage 3 --stop_stage 6         # some stages
#   ./run.sh --local_data_opts "--size tiny"  # the smallest corpus (CI)
set -euo pipefail

train_set=train
valid_set=valid
test_sets="test_noisy test_reverb"
inference_sets=test_noisy   # test_reverb: noisy-input rows only (dereverberation: issue C)
train_config=conf/train.yaml
inference_config="conf/enhance_udiffse.yaml conf/enhance_udiffse_plus.yaml"

./avse.sh \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --inference_sets "${inference_sets}" \
    --train_config "${train_config}" \
    --inference_config "${inference_config}" \
    --lip_backend none \
    --nj 2 --inference_nj 2 \
    "$@"
