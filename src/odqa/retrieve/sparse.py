"""BM25 retrieval: analyse the query as the corpus was analysed, then ask bm25s."""

from __future__ import annotations

from collections.abc import Sequence

from odqa.index.analysis import Analyzer
from odqa.index.bm25 import BM25Index
from odqa.index.collection import Collection
from odqa.retrieve.base import hits_from_rows
from odqa.retrieve.hit import Hit


class BM25Retriever:
    """Lexical retrieval with the analyzer recorded in the index."""

    name = "bm25"

    def __init__(self, index: BM25Index, analyzer: Analyzer, collection: Collection) -> None:
        self.index = index
        self.analyzer = analyzer
        self.collection = collection

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        rows, scores = self.index.search_tokens(
            self.analyzer.tokenize(queries), k + self.collection.num_deleted
        )
        return [hits[:k] for hits in hits_from_rows(self.collection, rows, scores)]
