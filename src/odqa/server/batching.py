"""Micro-batching: single-query searches arriving together become one ``Searcher.search``.

Query encoding (dense, ColBERT) costs far less per query in a batch than one at a time, so
the service does not search each request on its own: requests queue, and one consumer takes
whatever arrived within ``window`` seconds (and whatever queued while the previous batch
ran), groups it by ``(k, retriever, where)`` and makes one blocking search call per group, on one
worker thread — the searcher is not assumed thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass

from odqa.index.filters import parse_where, where_key
from odqa.retrieve.hit import Hit

Where = Mapping[str, object] | None
SearchFn = Callable[[list[str], int, str, Where], list[list[Hit]]]


@dataclass(frozen=True)
class _Pending:
    query: str
    k: int
    retriever: str
    where: Where
    filter_key: str
    future: asyncio.Future[list[Hit]]

    @property
    def group(self) -> tuple[int, str, str]:
        """What requests searched together share: k, the retriever and the filter."""
        return self.k, self.retriever, self.filter_key


class SearchBatcher:
    """Gathers concurrent searches into batched ``search(queries, k, retriever, where)`` calls run
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

    async def search(self, query: str, k: int, retriever: str, where: Where = None) -> list[Hit]:
        """The hits of one query, searched in a batch with its neighbours in time."""
        key = where_key(parse_where(where))  # a malformed filter fails this request only
        future: asyncio.Future[list[Hit]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(query, k, retriever, where, key, future))
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
            groups: dict[tuple[int, str, str], list[_Pending]] = {}
            for item in batch:
                groups.setdefault(item.group, []).append(item)
            for group in groups.values():
                await self._serve(group)

    async def _serve(self, group: list[_Pending]) -> None:
        waiting = [item for item in group if not item.future.done()]  # skip the abandoned
        if not waiting:
            return
        queries = [item.query for item in waiting]
        first = waiting[0]
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(
                self._executor, self._search, queries, first.k, first.retriever, first.where
            )
        except Exception as exc:
            for item in waiting:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        for item, hits in zip(waiting, results, strict=True):
            if not item.future.done():
                item.future.set_result(hits)
