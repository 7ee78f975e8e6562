# Corpus paths of this recipe: edit here or set them in the environment.
# TCD_TIMIT (required): the TCD-TIMIT root, holding
#     volunteers/<01M..59F>/Clips/straightcam/<utt>.mp4   (+ optional volunteers/<spk>/audio/<utt>.wav)
TCD_TIMIT=${TCD_TIMIT:-}
# TCD_TIMIT_LIPS (optional): pre-cropped 88x88 mouth videos <dir>/<spk>/<utt>.mp4; when set,
# video.scp points there and stage 3 uses lip_backend none instead of haar.
TCD_TIMIT_LIPS=${TCD_TIMIT_LIPS:-}
# NTCD_TIMIT (optional): <Noise>/<SNR>/volunteers/<spk>/straightcam/<utt>.wav -> test set test_ntcd
NTCD_TIMIT=${NTCD_TIMIT:-}
# DEMAND (optional): <TYPE>/ch01.wav or <TYPE>_16k/<TYPE>/ch01.wav -> test set test_demand
DEMAND=${DEMAND:-}
