"""The retriever protocol, and the one retriever over any kind of an index: rows to hits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from odqa.index.collection import Collection
from odqa.index.kind import RowSearcher
from odqa.retrieve.hit import Hit


@runtime_checkable
class Retriever(Protocol):
    """Anything that returns the top ``k`` passages for each query; with ``allowed`` (a
    boolean per passage row, a filter's), the top ``k`` among those rows."""

    name: str

    def search(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> list[list[Hit]]: ...


def hits_from_rows(collection: Collection, rows: np.ndarray, scores: np.ndarray) -> list[list[Hit]]:
    """Turn ``(queries, k)`` arrays of passage rows and scores into hits; row -1 and deleted
    rows are skipped."""
    doc_ids = collection.doc_ids
    deleted = collection.deleted
    results = []
    for query_rows, query_scores in zip(rows.tolist(), scores.tolist(), strict=True):
        found = [
            (row, score)
            for row, score in zip(query_rows, query_scores, strict=True)
            if row >= 0 and not deleted[row]
        ]
        meta = collection.rows([row for row, _ in found]) if found else np.zeros((0, 4), np.int64)
        results.append(
            [
                Hit(doc_ids[int(doc)], int(chunk), row, float(score), rank)
                for rank, ((row, score), (doc, chunk, _, _)) in enumerate(
                    zip(found, meta.tolist(), strict=True), start=1
                )
            ]
        )
    return results


class IndexRetriever:
    """A retriever kind of an index opened for search (``engine``), its rows turned into
    hits; deleted passages never come back."""

    def __init__(self, name: str, engine: RowSearcher, collection: Collection) -> None:
        self.name = name
        self.engine = engine
        self.collection = collection

    def search(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> list[list[Hit]]:
        """Hits among the ``allowed`` rows (a filter's, which leaves the deleted out), else
        among the live ones: the engine never ranks a deleted row, so none is fetched in
        vain however many were deleted."""
        if allowed is None and self.collection.num_deleted:
            allowed = self.collection.live
        rows, scores = self.engine.search(queries, k, allowed)
        return hits_from_rows(self.collection, rows, scores)

    def rescore(self, query: str, rows: Sequence[int], k: int) -> list[Hit]:
        """Exact re-scoring of ``query`` over the given rows, for engines that can."""
        found, scores = self.engine.rescore(query, rows, k)
        return hits_from_rows(self.collection, found, scores)[0]
