"""Scoring: the per-utterance engine of stage 6 (:mod:`avse.scoring.engine`: metrics,
permutation-invariant pairing, parallel over utterances), per-condition breakdowns
(:mod:`avse.scoring.conditions`), the discovery of an experiment's score directories
(:mod:`avse.scoring.entries`) and the ``RESULTS.md`` report built from them
(:mod:`avse.scoring.results`). The command is :mod:`avse.bin.score`."""
