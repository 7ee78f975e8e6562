#!/usr/bin/env bash
# mini_av: the synthetic audio-visual corpus, end to end on a laptop CPU.
#   ./run.sh                                  # stages 1-8 at the default size
#   ./run.sh --stage 3 --stop_stage 6         # some stages
#   ./run.sh --local_data_opts "--size tiny"  # the smallest corpus (CI)
#   ./run.sh --modality av                    # the lip-conditioned prior (AV-UDiffSE)
#   ./run.sh --modality av --stage 4 --train_config conf/train_av_gated_xattn.yaml  # fusion comparison (also _xattn)
#   ./run.sh --task restore                   # dereverberation, separation, joint (issue C)
#   ./run.sh --task restore --modality av     # the same with the AV prior, each talker on its own lips (D5)
#   ./run.sh --prior vae                      # the VAE-NMF baselines (--modality av: AV-CVAE)
#   ./run.sh --stage 8 --listening_opts "--max_utts 12"  # listening page: exp/listening/index.html
#   ./run.sh --noise_embed true               # + noise-aware conditioning from text/image/clip (issue D3)
set -euo pipefail

# --modality ao|av (this script's own option; the rest goes to avse.sh)
#   ao: audio-only prior (conf/train.yaml) with UDiffSE, UDiffSE+, a faster UDiffSE+
#       (15 steps, 3 samples) and UDiffSE+ with the paper's compressed-domain NMF noise
#   av: lip-conditioned prior (conf/train_av.yaml: lip-informed variance + concat fusion;
#       lip encoder pretrained on the phone alignments by
#       conf/lip_encoder.yaml) with AV-UDiffSE, AV-UDiffSE+ and robustness rows where the
#       test lips are degraded (50 % of the frames missing, mouth occluded, video 3 frames late)
#       and a control row with another utterance's lips (shuffle); every AV row scores the lips with
#       a lip-reliability network and takes the audio-only prior's score on the frames it rejects
#       (reliability-weighted lip guidance), so stage 4 also trains exp/lip_rel and exp/train
# --prior diffusion|vae|rvae (this script's own option)
#   diffusion: the score-based priors above
#   vae: VAE-NMF baselines (Leglaive et al. 2018): frame-wise VAE prior (conf/train_vae.yaml;
#       with --modality av the AV-CVAE of Sadeghi et al. 2020, conf/train_av_vae.yaml, and
#       --train_config conf/train_av_vae_xattn.yaml for attention fusion gated by the lip
#       reliability), enhanced by Monte-Carlo EM and by variational EM with NMF noise
#   rvae: the TCN RVAE (conf/train_rvae.yaml), variational EM
# --task denoise|restore (this script's own option)
#   denoise: test_noisy enhanced by the --modality's methods (the default run)
#   restore: with the same prior, informed (dps_informed) and blind (buddy; UDiffSE+ then
#       WPE: udiffse_plus_wpe; UDiffSE+ alone, denoising only, beside them; and without the
#       prior, the Wiener gain of the learned noise tracker then WPE: wiener_tracker_wpe, whose
#       tracker stage 4 trains as --noise_embed true does) dereverberation
#       of test_reverb (and of dev_reverb, the validation speakers with the training noises,
#       for choosing settings), oracle bounds of that cascade with the mixture's true noise
#       (conf/enhance_oracle_{noise,noise_psd,image}_wpe.yaml: no prior; the noise power per bin, its
#       long-term PSD, or the noise subtracted exactly, then the same WPE; and
#       conf/enhance_udiffse_plus_oracle_noise_wpe.yaml: the cascade with its UDiffSE+ given the
#       true noise power), separation
#       of test_2spk, joint restoration of test_joint (noise + room + two talkers) and its
#       cascade (separate, then buddy on each source).
#       With --modality av the prior is the lip-conditioned one (exp/train_av) and every
#       source of a separation (test_2spk: conf/enhance_av_separate.yaml; test_joint:
#       conf/enhance_av_joint.yaml, conf/enhance_av_cascade.yaml) is conditioned on its own
#       talker's lips and starts from its lip-envelope Wiener share of the mixture (init: lips;
#       dev_2spk and dev_joint, from the validation speakers with the training noises, are
#       for choosing these settings, as dev_reverb) (lip.scp, lip2.scp: stage 2 copies the
#       interferer's video as video2.scp, stage 3 dumps its lips); those rows are scored
#       without permutation (output k against talker k) with a PIT row <tag>_pit beside them.
#       Data made before these tables existed: remove data/test_2spk, data/test_joint and
#       their dump dirs, and run stages 2-3 again.
# --noise_embed true|false (this script's own option; issue D3, audio-only denoising)
#   true: stage 4 also trains the contrastive noise embedding (conf/noise_embed.yaml: noise audio,
#       scene text and scene pictures in one space; NMF-basis decoder trained on text) and prints
#       cross-modal retrieval; stage 5 gives test_noisy and test_noisy_nonstat (-5 dB babble, cafe,
#       music, traffic; conf/simulate/test_noisy_nonstat.yaml) a noise condition per utterance from
#       text, a picture and another noise-only clip (<set>_cond) and enhances them with UDiffSE+ blind
#       and with the embedding-conditioned noise model (conf/enhance_udiffse_plus_noise_{text,image,clip}.yaml),
#       beside a blind rank-24 NMF with the same robust M-steps (conf/enhance_udiffse_plus_nmf_robust.yaml);
#       stage 4 also trains the learned noise tracker (conf/noise_tracker.yaml: noise variance per bin
#       from the noisy input, conditioned on the embedding; trained on simulated mixtures of training
#       speech and data/noise_train_many, so not unsupervised with respect to the noise), run blind and per modality
#       (conf/enhance_udiffse_plus_noise_tracker{,_text,_image,_clip}.yaml; and the same variance in
#       the Wiener gain without a prior, conf/enhance_wiener_noise_tracker{,_text,_image,_clip}.yaml,
#       beside the Wiener gain of the stationary model, conf/enhance_wiener_stationary.yaml) on those sets and on
#       dev_noisy_nonstat (validation speakers, training noise), and blind on dev_noisy_nonstat_heldout
#       (validation speakers, held-out noise recordings data/noise_dev: for choosing its settings)
modality=ao
task=denoise
prior=diffusion
noise_embed=false
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --modality|--task|--prior|--noise_embed) [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
            declare "${1#--}=$2"; shift 2 ;;
        --modality=*|--task=*|--prior=*|--noise_embed=*) v=${1#--}; declare "${v%%=*}=${v#*=}"; shift ;;
        *) args+=("$1"); shift ;;
    esac
done

train_set=train
valid_set=valid
test_sets="test_noisy test_reverb dev_noisy"
# test_reverb: noisy-input rows only (dereverberation: --task restore); dev_noisy (validation
# speakers, training noise): for choosing sampler settings, e.g. --inference_sets dev_noisy
inference_sets=test_noisy
train_config=conf/train.yaml
inference_config="conf/enhance_udiffse.yaml conf/enhance_udiffse_plus.yaml conf/enhance_udiffse_plus_fast.yaml
    conf/enhance_udiffse_plus_paper_noise.yaml"
extra=()
# stage 4: the noise embedding and the learned noise tracker on it (--noise_embed true, --task restore)
tracker_flags=(--noise_embed_config conf/noise_embed.yaml --noise_tracker_config conf/noise_tracker.yaml
               --noise_tracker_train noise_train_many)
pack_default=udiffse_plus   # the method avse-enhance uses with the packed model (stage 7)
case "${modality}" in
    ao) ;;
    av)
        train_config=conf/train_av.yaml
        pack_default=av_udiffse_plus
        inference_config="conf/enhance_av_udiffse.yaml conf/enhance_av_udiffse_plus.yaml"
        for d in missing50 occlude shift3 shuffle; do
            inference_config+=" conf/enhance_av_udiffse_plus_${d}.yaml"
        done
        extra=(--lip_pretrain_config conf/lip_encoder.yaml)
        ;;
    *) echo "--modality must be ao or av, got '${modality}'" >&2; exit 2 ;;
esac
case "${prior}" in
    diffusion) ;;
    vae|rvae)
        [ "${task}" = denoise ] || { echo "--prior ${prior} has no --task ${task} (denoising only)" >&2; exit 2; }
        inference_config="conf/enhance_vae_mcem.yaml conf/enhance_vae_vem.yaml"
        pack_default=vae_vem
        case "${prior}-${modality}" in
            vae-ao) train_config=conf/train_vae.yaml ;;
            vae-av) train_config=conf/train_av_vae.yaml
                inference_config+=" conf/enhance_av_vae_mcem_shuffle.yaml" ;;
            rvae-ao) train_config=conf/train_rvae.yaml; inference_config=conf/enhance_vae_vem.yaml ;;
            *) echo "--prior rvae is audio-only here (use --train_config for an AV one)" >&2; exit 2 ;;
        esac
        ;;
    *) echo "--prior must be diffusion, vae or rvae, got '${prior}'" >&2; exit 2 ;;
esac
if [ "${modality}-${prior}" = av-diffusion ]; then
    # the AV system falls back to the audio-only prior on frames the lip-reliability network
    # rejects (missing, occluded): stage 4 trains both beside the AV prior (the audio-only
    # prior is kept if the default run made it)
    extra+=(--fallback_config conf/train.yaml --lip_rel_train true)
fi
case "${task}" in
    denoise) ;;
    restore)
        test_sets="test_reverb test_2spk test_joint dev_reverb dev_2spk dev_joint"
        inference_sets=
        separate=conf/enhance_separate.yaml joint=conf/enhance_joint.yaml cascade=conf/enhance_cascade.yaml
        if [ "${modality}" = av ]; then   # each source on its lips and started from its lip-envelope Wiener share
            separate=conf/enhance_av_separate.yaml joint=conf/enhance_av_joint.yaml cascade=conf/enhance_av_cascade.yaml
        fi
        inference_config="conf/enhance_dps_informed.yaml:test_reverb,dev_reverb
            conf/enhance_buddy.yaml:test_reverb,dev_reverb conf/enhance_udiffse_plus_wpe.yaml:test_reverb,dev_reverb
            conf/enhance_wiener_tracker_wpe.yaml:test_reverb,dev_reverb
            conf/enhance_udiffse_plus.yaml:test_reverb,dev_reverb
            conf/enhance_oracle_noise_wpe.yaml:test_reverb,dev_reverb
            conf/enhance_oracle_noise_psd_wpe.yaml:test_reverb,dev_reverb
            conf/enhance_oracle_image_wpe.yaml:test_reverb,dev_reverb
            conf/enhance_udiffse_plus_oracle_noise_wpe.yaml:test_reverb,dev_reverb
            ${separate}:test_2spk,dev_2spk
            ${joint}:test_joint,dev_joint ${cascade}:test_joint,dev_joint"
        pack_default=buddy
        # the noise tracker of conf/enhance_wiener_tracker_wpe.yaml: the same model as --noise_embed
        # true trains (on the noise embedding; skipped where exp/noise_tracker/model.pt exists)
        extra+=("${tracker_flags[@]}")
        ;;
    *) echo "--task must be denoise or restore, got '${task}'" >&2; exit 2 ;;
esac

case "${noise_embed}" in
    false) ;;
    true)
        [ "${modality}-${prior}-${task}" = ao-diffusion-denoise ] || {
            echo "--noise_embed true is for the audio-only diffusion prior and --task denoise" >&2; exit 2; }
        test_sets+=" test_noisy_nonstat dev_noisy_nonstat dev_noisy_nonstat_heldout"
        cond="test_noisy_cond,test_noisy_nonstat_cond"
        dev_cond=dev_noisy_nonstat_cond   # validation speakers, training noise: for choosing settings
        heldout=dev_noisy_nonstat_heldout # validation speakers, held-out noise: for the tracker's settings
        inference_config="conf/enhance_udiffse_plus.yaml:${inference_sets},test_noisy_nonstat,${cond},${dev_cond},${heldout}
            conf/enhance_udiffse.yaml conf/enhance_udiffse_plus_fast.yaml conf/enhance_udiffse_plus_paper_noise.yaml"
        inference_config+=" conf/enhance_udiffse_plus_nmf_robust.yaml:${cond}"   # blind, robust NMF (ablation)
        for m in text image clip; do inference_config+=" conf/enhance_udiffse_plus_noise_${m}.yaml:${cond}"; done
        # the learned noise tracker, blind (null condition) and told the scene by each modality, in
        # UDiffSE+ and in the Wiener gain (no prior), beside the Wiener gain of the stationary model
        for m in "" _text _image _clip; do
            sets="${cond},${dev_cond}"; [ -n "${m}" ] || sets+=",${heldout}"
            inference_config+=" conf/enhance_udiffse_plus_noise_tracker${m}.yaml:${sets}"
            inference_config+=" conf/enhance_wiener_noise_tracker${m}.yaml:${sets}"
        done
        inference_config+=" conf/enhance_wiener_stationary.yaml:${cond},${dev_cond},${heldout}"
        extra+=("${tracker_flags[@]}" --noise_embed_sets "test_noisy test_noisy_nonstat dev_noisy_nonstat")
        ;;
    *) echo "--noise_embed must be true or false, got '${noise_embed}'" >&2; exit 2 ;;
esac

./avse.sh \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    ${inference_sets:+--inference_sets "${inference_sets}"} \
    --train_config "${train_config}" \
    --inference_config "${inference_config}" \
    --lip_backend none \
    --nj 2 --inference_nj 2 \
    --pack_default "${pack_default}" \
    ${extra[@]+"${extra[@]}"} ${args[@]+"${args[@]}"}
