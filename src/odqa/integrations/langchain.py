"""``OdqaRetriever``: an odqa index as a LangChain retriever (``pip install 'odqa[langchain]'``).

Usage::

    from odqa.integrations.langchain import OdqaRetriever

    retriever = OdqaRetriever(index="my-index", k=4, retriever="hybrid")
    docs = retriever.invoke("what causes scurvy?")  # or await retriever.ainvoke(...)

Each hit is a ``langchain_core.documents.Document``: ``page_content`` is the passage's text,
``id`` its passage id, ``metadata`` odqa's fields (see :mod:`odqa.integrations.common`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from odqa.integrations.common import IndexSource, Record, missing_extra
from odqa.retrieve.options import SearchOptions
from odqa.retrieve.searcher import Searcher

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict, Field, PrivateAttr
except ModuleNotFoundError as error:
    raise missing_extra(error, __name__, "langchain_core", "langchain-core", "langchain") from error

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

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: str | Path | Searcher
    k: int = Field(default=4, ge=1)
    retriever: str | None = None
    where: dict[str, Any] | None = None
    unit: Literal["document", "passage"] = "document"
    options: SearchOptions | None = None
    _source: IndexSource = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self._source = IndexSource(self.index, self.options)
        self._source.check(self.k, self.retriever, self.unit, self.where)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [as_document(record) for record in self._search(query)]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        records = await asyncio.to_thread(self._search, query)
        return [as_document(record) for record in records]

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


def as_document(record: Record) -> Document:
    """A hit as LangChain's ``Document``."""
    return Document(page_content=record.text, metadata=dict(record.metadata), id=record.id)
