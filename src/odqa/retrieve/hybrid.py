"""Hybrid retrieval: several retrievers' passage lists fused into one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from odqa.retrieve.base import Retriever
from odqa.retrieve.fusion import DEFAULT_METHOD, fuse
from odqa.retrieve.hit import Hit

FUSION_DEPTH = 100


class HybridRetriever:
    """Fuses the top ``depth`` passages of each retriever (z-score weighted sum by default)."""

    name = "hybrid"

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        method: str = DEFAULT_METHOD,
        weights: Sequence[float] | None = None,
        depth: int = FUSION_DEPTH,
    ) -> None:
        self.retrievers = list(retrievers)
        self.method = method
        self.weights = weights
        self.depth = depth

    def search(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> list[list[Hit]]:
        depth = max(self.depth, k)
        per_retriever = [retriever.search(queries, depth, allowed) for retriever in self.retrievers]
        results = []
        for lists in zip(*per_retriever, strict=True):
            by_key = {(hit.doc_id, hit.chunk): hit for hits in lists for hit in hits}
            ranked = [[((hit.doc_id, hit.chunk), hit.score) for hit in hits] for hits in lists]
            fused = fuse(ranked, self.method, self.weights)[:k]
            results.append(
                [
                    replace(by_key[key], score=score, rank=rank)
                    for rank, (key, score) in enumerate(fused, start=1)
                ]
            )
        return results
