#!/usr/bin/env bash
# WHAMR!: noisy, reverberant one- and two-talker mixtures of WSJ0 speech (audio only).
#   ./run.sh                                  # stages 1-4: data, dump, clean-speech prior
#   ./run.sh --stage 1 --stop_stage 3 --local_data_opts "--sample_rates [16k] --lengths [min]"
# The prior trains on clean WSJ0 si_tr_s (validation si_dt_05). Enhancement,
# dereverberation and separation inference on the tt sets come with a later recipe
# revision; stages 5-6 need --inference_config.
set -euo pipefail

train_set=si_tr_s
valid_set=si_dt_05
test_sets="tt_mix_single_anechoic_min_16k tt_mix_single_reverb_min_16k tt_mix_both_reverb_min_16k"
train_config=conf/train.yaml

./avse.sh \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --train_config "${train_config}" \
    --lip_backend null \
    --ngpu 1 \
    --stop_stage 4 \
    "$@"
