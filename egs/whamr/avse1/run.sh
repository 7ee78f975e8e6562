#!/usr/bin/env bash
# WHAMR!: noisy, reverberant one- and two-talker mixtures of WSJ0 speech (audio only).
#   ./run.sh                                  # stages 1-8: data, dump, prior, inference, scoring, listening page
#   ./run.sh --stage 1 --stop_stage 3 --local_data_opts "--sample_rates [16k] --lengths [min]"
#   ./run.sh --stage 5 --stop_stage 6 --inference_config "conf/enhance_buddy.yaml:tt_mix_single_reverb_min_16k"
# The prior trains on clean WSJ0 si_tr_s (validation si_dt_05). Stage 5 runs each method
# on the test set of its task (CONFIG:SET); stage 6 scores against the dry sources
# (dereverb1.scp on reverberant sets, PIT over two talkers) into RESULTS.md.
set -euo pipefail

train_set=si_tr_s
valid_set=si_dt_05
tt=_min_16k
test_sets="tt_mix_single_anechoic${tt} tt_mix_single_reverb${tt} tt_mix_clean_anechoic${tt} tt_mix_both_reverb${tt}"
train_config=conf/train.yaml
# enhancement (noise only), blind dereverberation (+ noise), separation (clean anechoic
# two-talker), joint restoration of noisy reverberant two-talker mixtures and its cascade
inference_config="conf/enhance_udiffse_plus.yaml:tt_mix_single_anechoic${tt}
    conf/enhance_buddy.yaml:tt_mix_single_reverb${tt}
    conf/enhance_separate.yaml:tt_mix_clean_anechoic${tt}
    conf/enhance_joint.yaml:tt_mix_both_reverb${tt}
    conf/enhance_cascade.yaml:tt_mix_both_reverb${tt}"

./avse.sh \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --train_config "${train_config}" \
    --inference_config "${inference_config}" \
    --lip_backend null \
    --ngpu 1 \
    --gpu_inference true \
    "$@"
