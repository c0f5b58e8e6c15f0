"""Micro-batching: single-query searches arriving together become one ``Searcher.search``.

Query encoding (dense, ColBERT) costs far less per query in a batch than one at a time, so
the service does not search each request on its own: requests queue, and one consumer takes
whatever arrived within ``window`` seconds (and whatever queued while the previous batch
ran), groups it by ``(k, retriever)`` and makes one blocking search call per group, on one
worker thread — the searcher is not assumed thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from odqa.retrieve.hit import Hit

SearchFn = Callable[[list[str], int, str], list[list[Hit]]]


@dataclass(frozen=True)
class _Pending:
    query: str
    k: int
    retriever: str
    future: asyncio.Future[list[Hit]]


class SearchBatcher:
    """Gathers concurrent searches into batched ``search(queries, k, retriever)`` calls run
    on ``executor``, at most ``max_batch`` queries a call. Create it inside the event loop."""

    def __init__(
        self, search: SearchFn, executor: Executor, *, window: float, max_batch: int = 64
    ) -> None:
        self._search = search
        self._executor = executor
        self.window = window
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def search(self, query: str, k: int, retriever: str) -> list[Hit]:
        """The hits of one query, searched in a batch with its neighbours in time."""
        future: asyncio.Future[list[Hit]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(query, k, retriever, future))
        return await future

    async def close(self) -> None:
        """Stop taking batches (a batch already running in the executor completes)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self.window > 0:
                await asyncio.sleep(self.window)
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            groups: dict[tuple[int, str], list[_Pending]] = {}
            for item in batch:
                groups.setdefault((item.k, item.retriever), []).append(item)
            for (k, retriever), group in groups.items():
                await self._serve(k, retriever, group)

    async def _serve(self, k: int, retriever: str, group: list[_Pending]) -> None:
        waiting = [item for item in group if not item.future.done()]  # skip the abandoned
        if not waiting:
            return
        queries = [item.query for item in waiting]
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(
                self._executor, self._search, queries, k, retriever
            )
        except Exception as exc:
            for item in waiting:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        for item, hits in zip(waiting, results, strict=True):
            if not item.future.done():
                item.future.set_result(hits)
