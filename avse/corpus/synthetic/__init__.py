"""The synthetic audio-visual corpus (mini_av): speech, mouth video and noise."""
