"""Hybrid retrieval: several retrievers' passage lists fused into one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from odqa.errors import OdqaError
from odqa.retrieve.base import Retriever
from odqa.retrieve.fusion import DEFAULT_METHOD, fuse
from odqa.retrieve.hit import Hit

FUSION_DEPTH = 100


class HybridRetriever:
    """Fuses the top ``depth`` passages of each retriever (z-score weighted sum by default).

    A retriever whose weight is 0 is left out (never searched), so that a hybrid of two of
    three retrievers is written as weights such as ``(0.7, 0.3, 0)``.
    """

    name = "hybrid"

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        method: str = DEFAULT_METHOD,
        weights: Sequence[float] | None = None,
        depth: int = FUSION_DEPTH,
    ) -> None:
        weights = list(weights) if weights is not None else [1.0] * len(retrievers)
        if len(weights) != len(retrievers):
            raise OdqaError(f"{len(weights)} weights given for {len(retrievers)} retrievers")
        kept = [(part, weight) for part, weight in zip(retrievers, weights, strict=True) if weight]
        if not kept:
            raise OdqaError("hybrid weights are all 0: at least one retriever needs a weight")
        self.retrievers = [part for part, _ in kept]
        self.weights = [weight for _, weight in kept]
        self.method = method
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
