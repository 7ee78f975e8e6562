"""Our own sub-word tokenizer for scene descriptions: sentencepiece (Kudo & Richardson,
EMNLP 2018), trained on the paraphrases of :mod:`avse.corpus.synthetic.noise_text`.

The trained model is kept as bytes (``proto``) inside the noise-embedding model file,
so there is one file to ship. ``Tokenizer.train(sentences, vocab_size)``;
``tok.encode(list_of_str)`` -> ``LongTensor (B, L)`` padded with -1.
"""
from __future__ import annotations

import io
from typing import Sequence

import torch

from avse.errors import InputError


class Tokenizer:
    """A sentencepiece processor built from its serialised model ``proto`` (bytes)."""

    def __init__(self, proto: bytes):
        import sentencepiece as spm

        self.proto = bytes(proto)
        self.sp = spm.SentencePieceProcessor(model_proto=self.proto)

    @classmethod
    def train(cls, sentences: Sequence[str], vocab_size: int = 256, model_type: str = "unigram") -> "Tokenizer":
        import sentencepiece as spm

        sentences = [s for s in sentences if s.strip()]
        if not sentences:
            raise InputError("tokenizer: no sentences to train on")
        buf = io.BytesIO()
        # hard_vocab_limit=False: a small corpus may not support vocab_size pieces
        spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=buf,
                                       vocab_size=int(vocab_size), model_type=model_type,
                                       hard_vocab_limit=False, character_coverage=1.0,
                                       normalization_rule_name="nmt_nfkc_cf", minloglevel=2)
        return cls(buf.getvalue())

    @property
    def vocab_size(self) -> int:
        return int(self.sp.get_piece_size())

    def encode(self, texts: Sequence[str], max_len: int = 64) -> torch.Tensor:
        """Ids ``(B, L)``, ``L`` the longest (at most ``max_len``), padded with -1; an
        empty text gets the unknown-piece id."""
        ids = [self.sp.encode(t)[:max_len] or [self.sp.unk_id()] for t in texts]
        L = max(len(i) for i in ids)
        out = torch.full((len(ids), L), -1, dtype=torch.long)
        for b, i in enumerate(ids):
            out[b, :len(i)] = torch.tensor(i, dtype=torch.long)
        return out
