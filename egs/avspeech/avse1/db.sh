# Corpus paths of this recipe: edit here or set them in the environment.
# AVSPEECH (required): the folder with the official CSVs avspeech_train.csv and/or
#   avspeech_test.csv (no header; lines ytid,start_s,end_s,x,y).
AVSPEECH=${AVSPEECH:-}
# AVSPEECH_CLIPS (required): your downloaded clips, one folder, named by the official
#   convention <ytid>_<start %010.6f>-<end %010.6f>.mp4 (missing clips are reported, not fatal).
AVSPEECH_CLIPS=${AVSPEECH_CLIPS:-}
