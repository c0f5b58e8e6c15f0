"""``Searcher``: an index directory opened for search, from any path."""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

import odqa.fs as fs
from odqa.errors import IndexReplacedError, OdqaError
from odqa.index.collection import Collection
from odqa.index.filters import document_mask, parse_where, where_key
from odqa.index.manifest import Manifest
from odqa.index.registry import kind_named
from odqa.retrieve.base import IndexRetriever, Retriever
from odqa.retrieve.hit import Hit
from odqa.retrieve.hybrid import HybridRetriever
from odqa.retrieve.options import SearchOptions, search_options
from odqa.retrieve.rerank import RerankRetriever

UNITS = ("document", "passage")
MASKS_KEPT = 16


def best_per_document(hits: Sequence[Hit], k: int) -> list[Hit]:
    """The best-ranked passage of each document, re-ranked, at most ``k``."""
    seen: set[str] = set()
    kept: list[Hit] = []
    for hit in hits:
        if hit.doc_id not in seen:
            seen.add(hit.doc_id)
            kept.append(replace(hit, rank=len(kept) + 1))
            if len(kept) == k:
                break
    return kept


def _open(path: Path, tries: int = 3) -> tuple[Manifest, Collection]:
    """The manifest and collection of one and the same directory at ``path``: read again
    when another writer swapped a new index in between the two."""
    for _ in range(tries - 1):
        identity = fs.directory_identity(path)
        manifest = Manifest.read(path)
        with contextlib.suppress(IndexReplacedError):
            return manifest, Collection(path, identity)
    identity = fs.directory_identity(path)
    return Manifest.read(path), Collection(path, identity)


class Searcher:
    """Search an index by BM25, dense, ColBERT, their hybrid, or a retriever reranked by
    ColBERT (``bm25+colbert``); results carry text on request.

    ``options`` (a :class:`SearchOptions`, or its fields as keywords, e.g.
    ``Searcher("my-index", fusion="rrf")``) say how. A ``model`` given must be the model the
    index was built with (same weights hash), else :class:`ModelMismatchError` names both.
    Use it as a context manager, or call :meth:`close`, to release the index's files.

    ``search(..., where=...)`` filters by metadata before ranking (see
    :mod:`odqa.index.filters` for the grammar): ``where={"year": {"gte": 2018}}``.
    """

    def __init__(
        self, index_dir: str | Path, options: SearchOptions | None = None, **settings
    ) -> None:
        self.path = Path(index_dir).resolve()
        self.options = search_options(options, settings)
        self.manifest, self.collection = _open(self.path)
        fs.warn_of_leftovers(self.path)
        self._retrievers: dict[str, Retriever] = {}
        self._masks: OrderedDict[str, np.ndarray] = OrderedDict()

    def close(self) -> None:
        """Release the index's open files and loaded retrievers."""
        self._retrievers.clear()
        self.collection.close()

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def available(self) -> list[str]:
        """Retriever names this index supports: those built, ``hybrid`` when there are
        several, and ``FIRST+RERANKER`` for each built kind that reranks (``bm25+colbert``)."""
        names = list(self.manifest.retrievers)
        fusable = [*names, "hybrid"] if len(names) > 1 else names
        rerankers = [name for name in names if kind_named(name).reranks]
        return fusable + [f"{first}+{r}" for r in rerankers for first in fusable if first != r]

    @property
    def default_retriever(self) -> str:
        """The retriever a search that names none uses: the options' choice, else hybrid
        when the index has several retrievers whose models read the collection, else the one
        that does (BM25 beside a dense model that cannot read it; see the manifest)."""
        if self.options.retriever is not None:
            return self.options.retriever
        return self.manifest.default_retriever()

    def retriever(self, name: str | None = None) -> Retriever:
        """The retriever ``name`` (default: hybrid when the index has several), built once."""
        name = name or self.default_retriever
        if name not in self.available:
            choices = ", ".join(self.available)
            raise OdqaError(f"{self.path}: the index has no '{name}' retriever; it has {choices}")
        if name not in self._retrievers:
            made = self._make(name)
            self.collection.check_unchanged()  # its files were this index's, not a newer one's
            self._retrievers[name] = made
        return self._retrievers[name]

    @property
    def identity(self) -> tuple[int, int] | None:
        """The opened directory's identity (:func:`odqa.fs.directory_identity`): another
        at the path means the index was replaced since."""
        return self.collection.identity

    def _make(self, name: str) -> Retriever:
        if name in self.manifest.retrievers:
            kind = kind_named(name)
            engine = kind.open(self.path, self.manifest.retrievers[name], self.options)
            return IndexRetriever(name, engine, self.collection)
        if "+" in name:
            first, reranker = name.rsplit("+", 1)
            return RerankRetriever(self.retriever(first), self.retriever(reranker))
        parts = [self.retriever(part) for part in self.manifest.retrievers]
        return HybridRetriever(parts, self.options.fusion, self.options.weights)

    def search(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        retriever: str | None = None,
        unit: str = "document",
        with_text: bool = True,
        where: Mapping[str, object] | None = None,
    ) -> list[list[Hit]]:
        """Top ``k`` hits for each query: one per document (``unit="document"``, the best
        passage of each) or raw passages (``unit="passage"``).

        ``where`` keeps only documents whose metadata match it, before ranking: ``k`` hits
        come back whenever ``k`` matching documents are there to find (for BM25: matching
        documents that share a term with the query). An empty query is an error."""
        blank = [number for number, query in enumerate(queries, 1) if not query.strip()]
        if blank:
            where_blank = f" (query {blank[0]} of {len(queries)})" if len(queries) > 1 else ""
            raise OdqaError(f"empty query{where_blank}")
        if unit not in UNITS:
            raise OdqaError(f"unit must be one of {UNITS}, got {unit!r}")
        if k < 1:
            raise OdqaError(f"k must be at least 1, got {k}")
        allowed = self.allowed_rows(where)
        engine = self.retriever(retriever)
        if allowed is not None and not allowed.any():
            results: list[list[Hit]] = [[] for _ in queries]
        elif unit == "passage":
            results = engine.search(queries, k, allowed)
        else:
            results = self.documents(engine, queries, k, allowed)
        if with_text:
            results = [[self.attach_text(hit) for hit in hits] for hits in results]
        return results

    def allowed_rows(self, where: Mapping[str, object] | None) -> np.ndarray | None:
        """The passage rows a ``where`` filter keeps (deleted ones never), or None for no
        filter; the last few filters' rows are kept for reuse."""
        conditions = parse_where(where)
        if not conditions:
            return None
        key = where_key(conditions)
        if key not in self._masks:
            documents = document_mask(self.collection.metadata, conditions)
            self._masks[key] = documents[self.collection.owners] & ~self.collection.deleted
            if len(self._masks) > MASKS_KEPT:
                self._masks.popitem(last=False)
        self._masks.move_to_end(key)
        return self._masks[key]

    def documents(
        self,
        engine: Retriever,
        queries: Sequence[str],
        k: int,
        allowed: np.ndarray | None = None,
    ) -> list[list[Hit]]:
        """The top ``k`` documents (best passage each) of ``engine`` among the ``allowed``
        rows: more passages are asked for until every query has ``k`` documents or the index
        is spent. Hits carry no text (see :meth:`attach_text`)."""
        total = self.collection.num_passages if allowed is None else int(allowed.sum())
        per_document = self.collection.num_passages / max(1, self.collection.num_documents)
        depth = min(total, k * math.ceil(per_document))
        while True:
            passages = engine.search(queries, depth, allowed)
            results = [best_per_document(hits, k) for hits in passages]
            short = any(
                len(docs) < k and len(hits) >= depth
                for docs, hits in zip(results, passages, strict=True)
            )
            if not short or depth >= total:
                return results
            depth = min(total, depth * 2)

    def attach_text(self, hit: Hit) -> Hit:
        """The hit with its passage (text, title, offsets) read from the collection."""
        return (
            hit
            if hit.passage is not None
            else replace(hit, passage=self.collection.passage(hit.row))
        )
