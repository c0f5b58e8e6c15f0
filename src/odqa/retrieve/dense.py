"""Dense retrieval: encode the query with the index's model, then ask faiss."""

from __future__ import annotations

from collections.abc import Sequence

from odqa.index.collection import Collection
from odqa.index.dense import DenseIndex
from odqa.models import DenseEncoder
from odqa.retrieve.base import hits_from_rows
from odqa.retrieve.hit import Hit


class DenseRetriever:
    """Bi-encoder retrieval over a faiss index."""

    name = "dense"

    def __init__(self, index: DenseIndex, encoder: DenseEncoder, collection: Collection) -> None:
        self.index = index
        self.encoder = encoder
        self.collection = collection

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        vectors = self.encoder.encode_queries(list(queries))
        rows, scores = self.index.search_vectors(vectors, k + self.collection.num_deleted)
        return [hits[:k] for hits in hits_from_rows(self.collection, rows, scores)]
