"""The index behind the service: batched searches, reading, and updates that swap it.

Three worker threads, each one job at a time: searches (through the batcher), reading (the
reader), and updates. An update runs ``odqa.add_documents`` / ``odqa.delete_documents``
(which change a hard-linked copy and swap it in whole), opens the new index, warms it, and
only then points searches at it. A search already running keeps the searcher it started
with — whose files stay readable after the swap — so no search fails or sees half an
update, and the old searcher is closed after it, on the search thread.

An index replaced on disk by another process (``odqa index NEW SERVED --overwrite``, or
``odqa add`` beside the server) is noticed at the next search, by the directory's identity:
the service goes on serving the index it has open — every file of it was opened at once, so
it is one index, never a mix — while the update thread opens the new one whole; searches
move to it when it is warm. It logs both, and ``/info`` says what is served
(:meth:`IndexService.serving`). A replacement that does not open is logged and the old index
stays served.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import odqa.fs as fs
from odqa.corpus import Document
from odqa.errors import IndexFormatError, IndexReplacedError, OdqaError
from odqa.fs import LOG
from odqa.index.updates import add_documents, delete_documents
from odqa.qa.pipeline import evidence_from_hit
from odqa.read.answer import Answer, Reader
from odqa.retrieve.hit import Hit
from odqa.retrieve.options import SearchOptions
from odqa.retrieve.searcher import Searcher
from odqa.server.batching import SearchBatcher, Where


def open_warm(path: Path, options: SearchOptions) -> Searcher:
    """A searcher with every retriever built and used once, its ids and metadata columns
    open, so that nothing is read from the index directory later (it may have been swapped
    by then)."""
    searcher = Searcher(path, options)
    searcher.retriever()  # the default retriever (the options' choice) exists, or an error
    for name in searcher.available:
        if "+" in name:
            searcher.retriever(name)  # made of the others: made now, nothing read later
        else:
            searcher.search(["warm-up"], 1, retriever=name)
    searcher.collection.doc_ids  # noqa: B018 - opened now, from this directory
    try:
        searcher.collection.metadata  # noqa: B018
    except IndexReplacedError:
        raise
    except IndexFormatError:  # an index without columns: filters say so when asked
        pass
    return searcher


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


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
        self.opened_at = now()
        self.reopened = 0
        self._reopening = False
        self._refused: tuple[int, int] | None = None  # a replacement that did not open

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

    async def add(
        self, documents: Sequence[Document], upsert: bool = False
    ) -> dict[str, int | bool]:
        return await self._update(
            lambda: add_documents(
                self.path,
                documents,
                upsert=upsert,
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
        self._serve(open_warm(self.path, self.options))
        return report

    def _serve(self, searcher: Searcher) -> None:
        """Point searches at ``searcher``; the old one is closed after any search using it."""
        old, self.searcher = self.searcher, searcher
        self.opened_at = now()
        self._search_thread.submit(old.collection.close)

    def serving(self) -> dict[str, Any]:
        """What is served: when it was opened, and how many replacements on disk were taken up."""
        return {"opened_at": self.opened_at, "reopened": self.reopened}

    def _search(self, queries: list[str], k: int, retriever: str, where: Where) -> list[list[Hit]]:
        self._notice_replacement()
        return self.searcher.search(queries, k, retriever=retriever, where=where)

    def _notice_replacement(self) -> None:
        """On the search thread: when another index is at the path, have the update thread
        open it (once), and serve the open one meanwhile."""
        found = fs.directory_identity(self.path)
        if found is None or found in (self.searcher.identity, self._refused) or self._reopening:
            return
        self._reopening = True
        self._update_thread.submit(self._reopen)

    def _reopen(self) -> None:
        """On the update thread: open the index now at the path, whole, and serve it."""
        try:
            found = fs.directory_identity(self.path)
            if found is None or found == self.searcher.identity:
                return  # the service's own update took it up already
            try:
                searcher = open_warm(self.path, self.options)
            except Exception as exc:  # whatever a replacement holds, the served one stays
                self._refused = found
                LOG.warning(
                    "%s was replaced on disk by an index that does not open (%s); still "
                    "serving the one opened at %s",
                    self.path.name,
                    exc if isinstance(exc, OdqaError) else repr(exc),
                    self.opened_at,
                    exc_info=not isinstance(exc, OdqaError),
                )
                return
            self._serve(searcher)
            self.reopened += 1
            LOG.warning(
                "%s was replaced on disk; now serving the new index (%s documents, built %s)",
                self.path.name,
                f"{searcher.manifest.counts['documents']:,}",
                searcher.manifest.created_at,
            )
        finally:
            self._reopening = False
