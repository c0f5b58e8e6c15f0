"""What both framework adapters share: an index opened once, searched under a lock, and each
hit turned into plain text, score and metadata.

The metadata of a hit: ``doc_id``, ``passage_id``, ``chunk``, ``row`` (the passage's row in the
index), ``score``, ``rank``, ``retriever`` (the one that ranked it), ``title``, ``start`` and
``end`` (character offsets into the document's text), then the document's own ``metadata``
fields; a document field whose name is one of odqa's is kept as ``document_<name>``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odqa.errors import OdqaError
from odqa.retrieve.hit import Hit
from odqa.retrieve.options import SearchOptions
from odqa.retrieve.searcher import UNITS, Searcher

OWN_FIELDS = (
    "doc_id",
    "passage_id",
    "chunk",
    "row",
    "score",
    "rank",
    "retriever",
    "title",
    "start",
    "end",
)
BOOKKEEPING = ("passage_id", "chunk", "row", "score", "rank", "retriever", "start", "end")
"""Fields a language model has no use for: the LlamaIndex adapter keeps them out of prompts."""

_LOCKS: weakref.WeakKeyDictionary[Searcher, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


class MissingExtraError(OdqaError, ImportError):
    """An adapter imported without its framework: names the extra that installs it."""


def missing_extra(
    error: ModuleNotFoundError, adapter: str, module: str, package: str, extra: str
) -> ImportError:
    """What ``adapter`` raises when importing ``module`` failed: a :class:`MissingExtraError`
    naming ``odqa[extra]`` when ``module`` itself is absent, else ``error`` as it was."""
    if (error.name or "").split(".")[0] != module:
        return error
    return MissingExtraError(
        f"{adapter} needs {package}, which is not installed: pip install 'odqa[{extra}]'"
    )


def searcher_lock(searcher: Searcher) -> threading.Lock:
    """One lock per searcher: it is not thread-safe, and async retrieval runs in threads."""
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(searcher, threading.Lock())


@dataclass(frozen=True)
class Record:
    """One hit as a framework wants it: passage id, text, score, offsets and metadata."""

    id: str
    doc_id: str
    text: str
    score: float
    start: int
    end: int
    metadata: dict[str, Any]


class IndexSource:
    """An index searched on behalf of an adapter.

    ``index`` is an index folder (opened here with ``options``, closed by :meth:`close`) or
    an open :class:`Searcher` (used as it is and left open: its owner closes it).
    """

    def __init__(self, index: str | Path | Searcher, options: SearchOptions | None = None) -> None:
        if isinstance(index, Searcher):
            if options is not None:
                raise OdqaError("give options when opening the Searcher, not with an open one")
            self.searcher, self.owned = index, False
        else:
            self.searcher, self.owned = Searcher(index, options), True
        self._lock = searcher_lock(self.searcher)

    def check(
        self, k: int, retriever: str | None, unit: str, where: Mapping[str, Any] | None
    ) -> None:
        """Refuse settings no search could run with, before the first query: a ``where``
        that is malformed or names a field no document has too."""
        if k < 1:
            raise OdqaError(f"k must be at least 1, got {k}")
        if unit not in UNITS:
            raise OdqaError(f"unit must be one of {UNITS}, got {unit!r}")
        available = self.searcher.available
        if retriever is not None and retriever not in available:
            raise OdqaError(
                f"{self.searcher.path}: the index has no '{retriever}' retriever; it has "
                f"{', '.join(available)}"
            )
        with self._lock:
            self.searcher.allowed_rows(where)

    def search(
        self,
        query: str,
        *,
        k: int,
        retriever: str | None = None,
        where: Mapping[str, Any] | None = None,
        unit: str = "document",
    ) -> list[Record]:
        """The top ``k`` hits for ``query`` among the documents ``where`` keeps, as records."""
        name = retriever or self.searcher.default_retriever
        with self._lock:
            hits = self.searcher.search([query], k, retriever=name, unit=unit, where=where)[0]
            return [self._record(hit, name) for hit in hits]

    def _record(self, hit: Hit, retriever: str) -> Record:
        collection = self.searcher.collection
        document = collection.document(int(collection.owners[hit.row]))
        passage = hit.passage if hit.passage is not None else collection.passage(hit.row)
        metadata: dict[str, Any] = {
            "doc_id": hit.doc_id,
            "passage_id": hit.passage_id,
            "chunk": hit.chunk,
            "row": hit.row,
            "score": float(hit.score),
            "rank": hit.rank,
            "retriever": retriever,
            "title": passage.title,
            "start": passage.start,
            "end": passage.end,
        }
        for key, value in document.metadata.items():
            metadata[f"document_{key}" if key in OWN_FIELDS else key] = value
        return Record(
            hit.passage_id,
            hit.doc_id,
            passage.text,
            float(hit.score),
            passage.start,
            passage.end,
            metadata,
        )

    def close(self) -> None:
        """Close the searcher if this source opened it."""
        if self.owned:
            self.searcher.close()
