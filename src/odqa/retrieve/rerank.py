"""Reranking: a first stage's hits re-scored by a kind that reranks (ColBERT MaxSim), or any
texts ordered by MaxSim with no index at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from odqa.retrieve.base import IndexRetriever, Retriever
from odqa.retrieve.hit import Hit

if TYPE_CHECKING:
    from odqa.models.colbert import ColBERTEncoder

RERANK_DEPTH = 100


@dataclass
class RerankRetriever:
    """A first-stage retriever's top ``depth`` passages, re-scored exactly by ``reranker``
    (an index kind that reranks, e.g. ColBERT MaxSim)."""

    first: Retriever
    reranker: IndexRetriever
    depth: int = RERANK_DEPTH

    @property
    def name(self) -> str:
        return f"{self.first.name}+{self.reranker.name}"

    def search(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> list[list[Hit]]:
        candidates = self.first.search(queries, max(k, self.depth), allowed)
        return [
            self.reranker.rescore(query, [hit.row for hit in hits], k) if hits else []
            for query, hits in zip(queries, candidates, strict=True)
        ]


def rerank(
    query: str,
    documents: Sequence[str],
    encoder: ColBERTEncoder | None = None,
    k: int | None = None,
) -> list[tuple[int, float]]:
    """Order ``documents`` by MaxSim with ``query``, no index needed: ``(position, score)``.

    ``encoder`` defaults to the embedded model used as zero-shot late interaction.
    """
    from odqa.index.late import maxsim  # torch, loaded only when texts are reranked
    from odqa.index.late.exact import padded
    from odqa.models.colbert import ColBERTEncoder

    encoder = encoder or ColBERTEncoder()
    if not documents:
        return []
    Q, qmask = encoder.encode_queries([query])
    embeddings, doclens = encoder.encode_documents(list(documents))
    D, dmask = padded(embeddings, doclens)
    scores = maxsim(Q, qmask, D, dmask)[0].tolist()
    order = sorted(range(len(documents)), key=lambda i: (-scores[i], i))
    return [(i, scores[i]) for i in order[: k or len(documents)]]
