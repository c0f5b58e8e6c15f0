"""The index behind the service: batched searches, reading, and updates that swap it.

Three worker threads, each one job at a time: searches (through the batcher), reading (the
reader), and updates. An update runs ``odqa.add_documents`` / ``odqa.delete_documents``
(which change a hard-linked copy and swap it in whole), opens the new index, warms it, and
only then points searches at it. A search already running keeps the searcher it started
with — whose files stay readable after the swap — so no search fails or sees half an
update, and the old searcher is closed after it, on the search thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from odqa.corpus import Document
from odqa.index.updates import add_documents, delete_documents
from odqa.qa.pipeline import evidence_from_hit
from odqa.read.answer import Answer, Reader
from odqa.retrieve.hit import Hit
from odqa.retrieve.options import SearchOptions
from odqa.retrieve.searcher import Searcher
from odqa.server.batching import SearchBatcher, Where


def open_warm(path: Path, options: SearchOptions) -> Searcher:
    """A searcher with every retriever built and used once, so that nothing is read from
    the index directory later (it may have been swapped by then)."""
    searcher = Searcher(path, options)
    searcher.retriever()  # the default retriever (the options' choice) exists, or an error
    for name in searcher.available:
        if "+" not in name:
            searcher.search(["warm-up"], 1, retriever=name)
    return searcher


class IndexService:
    """An index opened for the service with ``options`` (default: the defaults), and an
    optional ``reader`` for questions.

    :meth:`start` and :meth:`stop` bracket serving (the app's lifespan); :meth:`stop` waits
    for an update in progress to finish.
    """

    def __init__(
        self,
        index_dir: str | Path,
        options: SearchOptions | None = None,
        *,
        reader: Reader | None = None,
        batch_window: float = 0.002,
    ) -> None:
        self.path = Path(index_dir).resolve()
        self.options = options or SearchOptions()
        self.reader = reader
        self._batch_window = batch_window
        self.searcher = open_warm(self.path, self.options)

    async def start(self) -> None:
        self._search_thread = ThreadPoolExecutor(1, thread_name_prefix="odqa-search")
        self._read_thread = ThreadPoolExecutor(1, thread_name_prefix="odqa-read")
        self._update_thread = ThreadPoolExecutor(1, thread_name_prefix="odqa-update")
        self._batcher = SearchBatcher(self._search, self._search_thread, window=self._batch_window)

    async def stop(self) -> None:
        await self._batcher.close()
        for pool in (self._update_thread, self._read_thread, self._search_thread):
            await asyncio.to_thread(pool.shutdown, wait=True)

    def resolve(self, retriever: str | None) -> str:
        return retriever or self.searcher.default_retriever

    async def search(
        self, query: str, k: int, retriever: str | None, where: Where = None
    ) -> list[Hit]:
        """The top ``k`` documents (best passage each) for ``query``, batched; with
        ``where``, among the documents whose metadata match."""
        return await self._batcher.search(query, k, self.resolve(retriever), where)

    async def ask(
        self, question: str, k: int, retriever: str | None, where: Where = None
    ) -> tuple[Answer, list[Hit]]:
        """The reader's answer from the top ``k`` passages, and those passages."""
        assert self.reader is not None, "the app checks for a reader"
        hits = await self.search(question, k, retriever, where)
        evidence = [evidence_from_hit(hit) for hit in hits]
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(self._read_thread, self.reader.read, question, evidence)
        return answer, hits

    async def add(self, documents: Sequence[Document]) -> dict[str, int | bool]:
        return await self._update(
            lambda: add_documents(
                self.path,
                documents,
                device=self.options.device,
                precision=self.options.precision,
            )
        )

    async def delete(self, doc_ids: Sequence[str]) -> dict[str, int]:
        return await self._update(lambda: delete_documents(self.path, doc_ids))

    async def _update(self, change: Callable[[], dict]) -> dict:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._update_thread, self._change_and_swap, change)

    def _change_and_swap(self, change: Callable[[], dict]) -> dict:
        """On the update thread: change the index, then serve the new one. Done here rather
        than on the event loop so that a cancelled request cannot leave a stale searcher."""
        report = change()
        old, self.searcher = self.searcher, open_warm(self.path, self.options)
        self._search_thread.submit(old.collection.close)  # after any search still using it
        return report

    def _search(self, queries: list[str], k: int, retriever: str, where: Where) -> list[list[Hit]]:
        return self.searcher.search(queries, k, retriever=retriever, where=where)
