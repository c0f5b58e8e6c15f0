"""Retrieval done once, replayed for every trial: a retriever that remembers its results."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from odqa.retrieve.base import Retriever
from odqa.retrieve.hit import Hit


class Remembered:
    """``retriever`` with its results kept by (query, k): a trial that fuses the same lists
    again costs no search. Exact: the same query at the same k gives the same hits."""

    def __init__(self, retriever: Retriever) -> None:
        self.inner = retriever
        self.name = retriever.name
        self._kept: dict[tuple[str, int], list[Hit]] = {}

    def search(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> list[list[Hit]]:
        if allowed is not None:  # a filter: searched afresh (tuning never filters)
            return self.inner.search(queries, k, allowed)
        missing = list(dict.fromkeys(q for q in queries if (q, k) not in self._kept))
        if missing:
            for query, hits in zip(missing, self.inner.search(missing, k), strict=True):
                self._kept[(query, k)] = hits
        return [self._kept[(query, k)] for query in queries]
