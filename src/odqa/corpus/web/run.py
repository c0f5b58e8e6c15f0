"""One fetch run: URL list in, corpus JSONL and per-URL report out, resumable and cached."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from odqa.corpus.records import Document
from odqa.corpus.web.cache import ResponseCache
from odqa.corpus.web.extract import extract, media_type
from odqa.corpus.web.fetcher import Fetcher, FetchOptions, open_session
from odqa.corpus.web.output import (
    CorpusWriter,
    ReportWriter,
    Status,
    UrlResult,
    done_ids,
    report_path,
)
from odqa.corpus.web.urls import UrlLine, read_url_list
from odqa.errors import InputError

Outcome = tuple[UrlResult, Document | None]
TASKS_PER_SLOT = 64
"""Tasks kept in flight per concurrency slot, so that a run of one host's URLs in the list
does not hold back the other hosts."""


@dataclass(frozen=True, slots=True)
class FetchSummary:
    """Counts of a run: written from the network (ok) or the cache, failed, skipped lines
    (already in the output, or repeats), and lines that are not URLs; where the files went."""

    out: Path
    report: Path
    ok: int
    cached: int
    failed: int
    skipped: int
    invalid: int


async def fetch_corpus_async(
    urls_file: str | Path,
    out: str | Path,
    options: FetchOptions | None = None,
    *,
    cache_dir: str | Path | None = None,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[UrlResult], None] | None = None,
) -> FetchSummary:
    """Fetch every URL of ``urls_file`` and append one document per page to ``out``.

    Each document's id is its URL, normalised (scheme and host lower-cased, fragment dropped):
    readable, unique within the list, and stable across runs, which is what makes a run
    resumable — URLs whose id is already in ``out`` are skipped. Bodies are cached under
    ``cache_dir`` (default ``<out>.cache``), so a re-run downloads nothing twice. Every line of
    the list gets one line in ``<out>.report.jsonl`` (written afresh each run);
    ``on_start(total)`` and ``on_result(result)`` follow progress. Failures of single URLs are
    reported, never raised; InputError is raised for an unreadable list or output file.
    """
    options = options or FetchOptions()
    out = Path(out)
    report = report_path(out)
    url_list = read_url_list(urls_file)
    done = done_ids(out)
    if cache_dir is None:
        cache_dir = out.with_name(f"{out.name}.cache")
    cache = ResponseCache(cache_dir)
    todo = [entry for entry in url_list.urls if entry.url not in done]
    upfront = [UrlResult(bad.url, bad.line, "skipped", bad.reason) for bad in url_list.invalid]
    upfront += [UrlResult(dup.url, dup.line, "skipped", dup.reason) for dup in url_list.duplicates]
    upfront += [
        UrlResult(entry.url, entry.line, "skipped", "already in the output")
        for entry in url_list.urls
        if entry.url in done
    ]
    upfront.sort(key=lambda result: result.line)
    if on_start is not None:
        on_start(len(upfront) + len(todo))
    counts: dict[Status, int] = {"ok": 0, "cached": 0, "failed": 0, "skipped": 0}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        corpus_file = open(out, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        report_file = open(report, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as error:
        raise InputError(f"cannot write: {error.strerror or error}", path=error.filename) from None
    with corpus_file, report_file:
        corpus, reports = CorpusWriter(corpus_file), ReportWriter(report_file)

        def record(result: UrlResult, document: Document | None = None) -> None:
            if document is not None:
                corpus.write(document)
            reports.write(result)
            counts[result.status] += 1
            if on_result is not None:
                on_result(result)

        for result in upfront:
            record(result)
        await _fetch_all(todo, options, cache, record)
    return FetchSummary(
        out=out,
        report=report,
        ok=counts["ok"],
        cached=counts["cached"],
        failed=counts["failed"],
        skipped=len(upfront) - len(url_list.invalid),
        invalid=len(url_list.invalid),
    )


def fetch_corpus(
    urls_file: str | Path,
    out: str | Path,
    options: FetchOptions | None = None,
    *,
    cache_dir: str | Path | None = None,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[UrlResult], None] | None = None,
) -> FetchSummary:
    """:func:`fetch_corpus_async`, run to completion in a new event loop."""
    return asyncio.run(
        fetch_corpus_async(
            urls_file, out, options, cache_dir=cache_dir, on_start=on_start, on_result=on_result
        )
    )


async def _fetch_all(
    todo: list[UrlLine],
    options: FetchOptions,
    cache: ResponseCache,
    record: Callable[[UrlResult, Document | None], None],
) -> None:
    """Fetch ``todo`` with a bounded number of tasks, recording each outcome as it completes."""
    async with open_session(options) as session:
        fetcher = Fetcher(session, options)
        entries = iter(todo)
        window = options.concurrency * TASKS_PER_SLOT
        pending: set[asyncio.Task[Outcome]] = set()
        try:
            while True:
                for entry in islice(entries, window - len(pending)):
                    pending.add(asyncio.create_task(_fetch_one(entry, fetcher, cache)))
                if not pending:
                    return
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    record(*task.result())
        finally:  # interrupted: stop the requests still in flight before the session closes
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


async def _fetch_one(entry: UrlLine, fetcher: Fetcher, cache: ResponseCache) -> Outcome:
    """The report line for one URL, and its document when it yielded text."""
    page = cache.get(entry.url)
    status: Status = "cached"
    attempts = 0
    if page is None:
        outcome, attempts = await fetcher.fetch(entry.url)
        if isinstance(outcome, str):
            return UrlResult(entry.url, entry.line, "failed", outcome, attempts), None
        page, status = outcome, "ok"
        cache.put(page)
    try:
        extracted = extract(page.body, page.content_type, entry.url)
    except Exception as error:  # arbitrary web content must not stop the run
        reason = f"could not extract text: {error}"
        return UrlResult(entry.url, entry.line, "failed", reason, attempts), None
    if not extracted.text:
        return UrlResult(entry.url, entry.line, "failed", "no text", attempts), None
    metadata = {
        "url": entry.url,
        "fetched_at": page.fetched_at,
        "content_type": media_type(page.content_type),
        "status": page.status,
    }
    document = Document(id=entry.url, text=extracted.text, title=extracted.title, metadata=metadata)
    return UrlResult(entry.url, entry.line, status, "", attempts), document
