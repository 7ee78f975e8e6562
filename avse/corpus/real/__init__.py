"""Adapters of real corpora (TCD-TIMIT, WHAMR!, AVSpeech): their layouts, metadata and
splits, read into what the data-preparation commands write as Kaldi-style data dirs."""
