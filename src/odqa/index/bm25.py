"""BM25 over passages, stored and scored by bm25s (sparse matrices, memory-mapped at load)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np

from odqa.index.analysis import Analyzer

BM25_DEFAULTS = {"method": "lucene", "k1": 0.9, "b": 0.4}
"""Pyserini's BEIR settings (Lucene BM25, k1 0.9, b 0.4)."""


class BM25Builder:
    """Collects analysed passages, mapping tokens to ids as they stream in."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.vocab: dict[str, int] = {}
        self.token_ids: list[list[int]] = []

    def add(self, texts: Sequence[str]) -> None:
        for tokens in self.analyzer.tokenize(texts):
            self.token_ids.append(
                [self.vocab.setdefault(token, len(self.vocab)) for token in tokens]
            )

    def save(self, folder: Path, method: str, k1: float, b: float) -> None:
        model = bm25s.BM25(method=method, k1=k1, b=b)
        model.index(bm25s.tokenization.Tokenized(self.token_ids, self.vocab), show_progress=False)
        model.save(str(folder), show_progress=False)


class BM25Index:
    """A saved bm25s index: top-k passage rows for analysed queries."""

    def __init__(self, folder: Path) -> None:
        self.model = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
        self.size = int(self.model.scores["num_docs"])

    def search_tokens(
        self, queries: Sequence[Sequence[str]], k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores, shape ``(len(queries), min(k, size))``; row -1 marks no match.

        A query none of whose tokens is in the vocabulary matches nothing.
        """
        k = min(k, self.size)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.zeros((len(queries), k), dtype=np.float32)
        vocab = self.model.vocab_dict
        known = [i for i, query in enumerate(queries) if any(t in vocab for t in query)]
        if known and k:
            found, found_scores = self.model.retrieve(
                [list(queries[i]) for i in known], k=k, show_progress=False
            )
            matched = found_scores > 0
            rows[known] = np.where(matched, found, -1)
            scores[known] = np.where(matched, found_scores, 0.0)
        return rows, scores
