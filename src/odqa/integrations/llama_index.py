"""``OdqaRetriever``: an odqa index as a LlamaIndex retriever
(``pip install 'odqa[llama-index]'``).

Usage::

    from odqa.integrations.llama_index import OdqaRetriever

    retriever = OdqaRetriever(index="my-index", k=4, retriever="hybrid")
    nodes = retriever.retrieve("what causes scurvy?")  # or await retriever.aretrieve(...)

Each hit is a ``NodeWithScore`` holding a ``TextNode``: its ``id_`` is the passage id, its
text the passage's, ``start_char_idx``/``end_char_idx`` the offsets into the document's text,
its source relationship the document id, and ``metadata`` odqa's fields (see
:mod:`odqa.integrations.common`); the bookkeeping ones (row, score, rank, offsets…) are kept
out of what the language model and embedders read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from odqa.integrations.common import BOOKKEEPING, IndexSource, Record, missing_extra
from odqa.retrieve.options import SearchOptions
from odqa.retrieve.searcher import Searcher

try:
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import (
        NodeRelationship,
        NodeWithScore,
        QueryBundle,
        RelatedNodeInfo,
        TextNode,
    )
except ModuleNotFoundError as error:
    raise missing_extra(
        error, __name__, "llama_index", "llama-index-core", "llama-index"
    ) from error

__all__ = ["OdqaRetriever"]


class OdqaRetriever(BaseRetriever):
    """Retrieves the top ``k`` passages of an odqa index for a query.

    ``index`` is an index folder (opened with ``options``, a :class:`odqa.SearchOptions`) or an
    open :class:`odqa.Searcher` (left open: its owner closes it). ``retriever`` names the odqa
    retriever (default: the index's, hybrid when it has several); ``unit`` is ``"document"``
    (the best passage of each document) or ``"passage"``. ``where`` filters by document
    metadata before ranking, so ``k`` hits come back from the documents it keeps (the grammar
    of :mod:`odqa.index.filters`: ``{"year": 2020}``, ``{"source": ["pubmed", "pmc"]}``,
    ``{"year": {"gte": 2018}}``); a bad one is refused here. Async retrieval runs the search
    in a worker thread, so the event loop is never blocked.
    """

    def __init__(
        self,
        index: str | Path | Searcher,
        k: int = 4,
        retriever: str | None = None,
        where: Mapping[str, Any] | None = None,
        unit: str = "document",
        options: SearchOptions | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        self._source = IndexSource(index, options)
        self.where = None if where is None else dict(where)
        self._source.check(k, retriever, unit, self.where)
        self.k, self.retriever, self.unit = k, retriever, unit
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [as_node(record) for record in self._search(query_bundle.query_str)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        records = await asyncio.to_thread(self._search, query_bundle.query_str)
        return [as_node(record) for record in records]

    def _search(self, query: str) -> list[Record]:
        return self._source.search(
            query, k=self.k, retriever=self.retriever, where=self.where, unit=self.unit
        )

    def close(self) -> None:
        """Release the index if this retriever opened it."""
        self._source.close()

    def __enter__(self) -> OdqaRetriever:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def as_node(record: Record) -> NodeWithScore:
    """A hit as LlamaIndex's ``NodeWithScore`` of a ``TextNode``."""
    node = TextNode(
        id_=record.id,
        text=record.text,
        metadata=dict(record.metadata),
        start_char_idx=record.start,
        end_char_idx=record.end,
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=record.doc_id)},
        excluded_llm_metadata_keys=list(BOOKKEEPING),
        excluded_embed_metadata_keys=list(BOOKKEEPING),
    )
    return NodeWithScore(node=node, score=record.score)
