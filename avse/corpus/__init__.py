"""Corpora: the synthetic audio-visual generator (:mod:`avse.corpus.synthetic`, mini_av)
and the adapters of real corpora (:mod:`avse.corpus.real`); :mod:`avse.corpus.types`
holds what both sides and the stages share (phoneme events, the video-frame rule)."""
