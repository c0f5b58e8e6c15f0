"""Live updates find what a rebuild finds: SciFact after ten rounds of additions and
deletions, against SciFact's final collection built from scratch.

The index starts as SciFact less 1,000 documents held back (seeded); each round adds 100 of
them and deletes 50 documents of the index; then the final collection is built anew with the
same settings. For SciFact's 300 test queries, BM25, dense and hybrid (z-score) top-10 lists
are compared: the same documents in the same order, and the largest score difference. Both
indexes encode in fp32, so that the same passage gives the same vector whatever batch it is
encoded in (bf16 autocast does not promise that).

Run: .venv/bin/python bench/live_scifact.py
"""

from __future__ import annotations

import json
import random
import shutil
import time

from common import DATA, WORK, report
from odqa.corpus import read_documents, read_qrels, read_queries
from odqa.index import add_documents, build_index, delete_documents
from odqa.retrieve import Searcher

SCIFACT = DATA / "beir-scifact"
HELD_BACK, ROUNDS, ADDED, DELETED = 1_000, 10, 100, 50
SETTINGS = {"retrievers": ["bm25", "dense"], "precision": "fp32", "overwrite": True}


def write(path, documents) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for d in documents:
            record = {"id": d.id, "title": d.title, "text": d.text, "metadata": d.metadata}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def top10(index, queries, retriever: str) -> list[list[tuple[str, float]]]:
    with Searcher(index, precision="fp32") as searcher:
        hits = searcher.search([query.text for query in queries], 10, retriever=retriever)
    return [[(hit.doc_id, hit.score) for hit in query_hits] for query_hits in hits]


def main() -> None:
    folder = WORK / "live-scifact"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    documents = list(read_documents(SCIFACT))
    rng = random.Random(0)
    held = set(rng.sample(range(len(documents)), HELD_BACK))
    start = [d for number, d in enumerate(documents) if number not in held]
    waiting = [d for number, d in enumerate(documents) if number in held]
    write(folder / "start.jsonl", start)
    started = time.perf_counter()
    index = build_index(folder / "start.jsonl", folder / "live", **SETTINGS)
    build_seconds = time.perf_counter() - started
    live = {d.id: d for d in start}
    rounds = []
    for number in range(ROUNDS):
        batch = waiting[number * ADDED : (number + 1) * ADDED]
        started = time.perf_counter()
        added = add_documents(index, batch, precision="fp32")
        add_seconds = time.perf_counter() - started
        live |= {d.id: d for d in batch}
        gone = rng.sample(sorted(live), DELETED)
        started = time.perf_counter()
        deleted = delete_documents(index, gone)
        rounds.append(
            {
                "add_seconds": round(add_seconds, 2),
                "delete_seconds": round(time.perf_counter() - started, 2),
                "report": {**added, **deleted},
            }
        )
        for doc_id in gone:
            del live[doc_id]
    final = [d for d in documents if d.id in live]
    write(folder / "final.jsonl", final)
    started = time.perf_counter()
    rebuilt = build_index(folder / "final.jsonl", folder / "rebuilt", **SETTINGS)
    rebuild_seconds = time.perf_counter() - started
    judged = read_qrels(SCIFACT / "qrels" / "test.tsv")
    queries = [query for query in read_queries(SCIFACT) if query.id in judged]
    comparison = {}
    for retriever in ("bm25", "dense", "hybrid"):
        ours, theirs = top10(index, queries, retriever), top10(rebuilt, queries, retriever)
        same = sum(
            [d for d, _ in a] == [d for d, _ in b] for a, b in zip(ours, theirs, strict=True)
        )
        largest = max(
            (abs(x - y) for a, b in zip(ours, theirs, strict=True)
             for (_, x), (_, y) in zip(a, b, strict=False)),
            default=0.0,
        )  # fmt: skip
        comparison[retriever] = {
            "queries": len(queries),
            "identical_top10": same,
            "largest_score_difference": largest,
        }
    report(
        "live_scifact",
        {
            "documents_final": len(final),
            "build_seconds": round(build_seconds, 1),
            "rebuild_seconds": round(rebuild_seconds, 1),
            "rounds": rounds,
            "comparison": comparison,
        },
    )


if __name__ == "__main__":
    main()
