"""Kaldi-style data directories and resumable per-utterance jobs."""
