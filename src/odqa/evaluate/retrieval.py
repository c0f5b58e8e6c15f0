"""Running query sets through a searcher and scoring the runs against judgements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from odqa.corpus.records import Qrels, Query
from odqa.corpus.schema import shown
from odqa.errors import InputError
from odqa.evaluate import Run, evaluate_run, write_trec_run
from odqa.retrieve.searcher import Searcher

RUN_DEPTH = 100
QUERY_BATCH = 256


def run_queries(
    searcher: Searcher,
    queries: Sequence[Query],
    *,
    retriever: str | None = None,
    k: int = RUN_DEPTH,
    show_progress: bool = False,
    where: Mapping[str, object] | None = None,
) -> Run:
    """The top ``k`` documents of each query (best passage per document) as a run; with
    ``where``, among the documents whose metadata match."""
    run: Run = {}
    progress = tqdm(total=len(queries), desc="searching", unit="query", disable=not show_progress)
    for start in range(0, len(queries), QUERY_BATCH):
        batch = queries[start : start + QUERY_BATCH]
        results = searcher.search(
            [query.text for query in batch], k, retriever=retriever, with_text=False, where=where
        )
        for query, hits in zip(batch, results, strict=True):
            run[query.id] = {hit.doc_id: hit.score for hit in hits}
        progress.update(len(batch))
    progress.close()
    return run


def evaluate_index(
    searcher: Searcher,
    queries: Sequence[Query],
    qrels: Qrels,
    *,
    retriever: str | None = None,
    accuracy_at: Sequence[int] = (),
    run_out: str | Path | None = None,
    show_progress: bool = False,
    where: Mapping[str, object] | None = None,
) -> dict[str, float | int]:
    """Metrics (nDCG@10, Recall@10/100, MRR@10, accuracy@k, counts) of one retriever.

    Only queries that have judgements are searched; ``queries_without_qrels`` counts the rest.
    """
    judged = judged_queries(queries, qrels)
    run = run_queries(
        searcher,
        judged,
        retriever=retriever,
        k=max(RUN_DEPTH, *accuracy_at) if accuracy_at else RUN_DEPTH,
        show_progress=show_progress,
        where=where,
    )
    if run_out is not None:
        write_trec_run(run, run_out, tag=f"odqa-{retriever or searcher.default_retriever}")
    metrics = evaluate_run(run, qrels, accuracy_at=accuracy_at)
    return {**metrics, "queries_without_qrels": len(queries) - len(judged)}


def compared_retrievers(searcher: Searcher) -> list[str]:
    """The retrievers a comparison shows: the one the options name, else each of the index's
    and their hybrid (the rerankers left out)."""
    if searcher.options.retriever is not None:
        return [searcher.options.retriever]
    return [name for name in searcher.available if "+" not in name]


def judged_queries(
    queries: Sequence[Query], qrels: Qrels, source: str = "the queries", judged_by: str = "qrels"
) -> list[Query]:
    """The queries that have judgements; an error naming both sources when none has."""
    if not queries:
        raise InputError("holds no queries", path=source)
    if not qrels:
        raise InputError("holds no judgements", path=judged_by)
    judged = [query for query in queries if query.id in qrels]
    if not judged:
        query_ids = _examples([query.id for query in queries])
        qrels_ids = _examples(list(qrels))
        raise InputError(
            f"none of its {len(queries)} query ids appears in {judged_by} "
            f"(query ids: {query_ids}; judged query ids: {qrels_ids})",
            path=source,
            field="id",
        )
    return judged


def _examples(ids: Sequence[str], count: int = 3) -> str:
    """The first ``count`` of ``ids``, quoted, and how many more there are."""
    shown_ids = ", ".join(shown(item, 30) for item in ids[:count])
    more = len(ids) - count
    return f"{shown_ids} and {more} more" if more > 0 else shown_ids
