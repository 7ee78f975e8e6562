"""Scoring helpers: per-condition breakdowns (:mod:`avse.scoring.conditions`) and the
``RESULTS.md`` report built from score directories (:mod:`avse.scoring.results`)."""
