# Corpus paths of this recipe. mini_av is generated, not downloaded: MINI_AV is where
# the generated audio and video go (a few hundred MB at the default size).
MINI_AV=${MINI_AV:-downloads/mini_av}
