# Corpus paths of this recipe: edit here or set them in the environment.
# WSJ0 (required): WSJ0 converted to wav: [wsj0/]si_tr_s/<spk>/<utt>.wav, si_dt_05, si_et_05
#   (local/sph2wav.sh converts the LDC .wv1 files with sph2pipe).
WSJ0=${WSJ0:-}
# WHAM_NOISE (required): the unzipped wham_noise: {tr,cv,tt}/<mixture>.wav and
#   metadata/mix_param_meta_{tr,cv,tt}.csv
WHAM_NOISE=${WHAM_NOISE:-}
# WHAMR_PARAMS (optional): folder with the official reverb_params_{tr,cv,tt}.csv of the
#   WHAMR! scripts (data/ of whamr_scripts): the official rooms; empty: rooms drawn from
#   WHAMR!'s distributions.
WHAMR_PARAMS=${WHAMR_PARAMS:-}
# WHAMR_OUT: where the generated WHAMR! audio goes (about 300 GB for everything).
WHAMR_OUT=${WHAMR_OUT:-downloads/whamr}
