"""Live updates find what a rebuild finds: SciFact after ten rounds of additions and
deletions, against SciFact's final collection built from scratch.

The index starts as SciFact less 1,000 documents held back (seeded); each round adds 100 of
them and deletes 50 documents of the index; then the final collection is built anew with the
same settings. For SciFact's 300 test queries, each retriever's top-10 lists (and hybrid's,
z-score, with BM25 and dense) are compared: the same documents in the same order, the largest
score difference, and the mean share of the rebuilt top 10 found (ColBERT keeps the centroids
of its first build, so it is compared by that share). Both indexes encode in fp32, so that the
same passage gives the same vector whatever batch it is encoded in (bf16 autocast does not
promise that).

Run: .venv/bin/python bench/live_scifact.py
     .venv/bin/python bench/live_scifact.py --retrievers colbert --name live_scifact_colbert
"""

from __future__ import annotations

import argparse
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


def write(path, documents) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for d in documents:
            record = {"id": d.id, "title": d.title, "text": d.text, "metadata": d.metadata}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def top10(index, queries, retriever: str) -> list[list[tuple[str, float]]]:
    with Searcher(index, precision="fp32") as searcher:
        hits = searcher.search([query.text for query in queries], 10, retriever=retriever)
    return [[(hit.doc_id, hit.score) for hit in query_hits] for query_hits in hits]


def compare(ours, theirs) -> dict:
    """Identical top-10 lists, the largest score difference, the mean share of ``theirs``
    found in ``ours``."""
    pairs = list(zip(ours, theirs, strict=True))
    return {
        "queries": len(pairs),
        "identical_top10": sum([d for d, _ in a] == [d for d, _ in b] for a, b in pairs),
        "largest_score_difference": max(
            (abs(x - y) for a, b in pairs for (_, x), (_, y) in zip(a, b, strict=False)),
            default=0.0,
        ),
        "top10_overlap": sum(
            len({d for d, _ in a} & {d for d, _ in b}) / max(len(b), 1) for a, b in pairs
        )
        / max(len(pairs), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrievers", default="bm25,dense")
    parser.add_argument("--name", default="live_scifact", help="bench/results/NAME.json")
    args = parser.parse_args()
    retrievers = args.retrievers.split(",")
    settings = {"retrievers": retrievers, "precision": "fp32", "overwrite": True}
    folder = WORK / args.name.replace("_", "-")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    documents = list(read_documents(SCIFACT))
    rng = random.Random(0)
    held = set(rng.sample(range(len(documents)), HELD_BACK))
    start = [d for number, d in enumerate(documents) if number not in held]
    waiting = [d for number, d in enumerate(documents) if number in held]
    write(folder / "start.jsonl", start)
    started = time.perf_counter()
    index = build_index(folder / "start.jsonl", folder / "live", **settings)
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
    rebuilt = build_index(folder / "final.jsonl", folder / "rebuilt", **settings)
    rebuild_seconds = time.perf_counter() - started
    judged = read_qrels(SCIFACT / "qrels" / "test.tsv")
    queries = [query for query in read_queries(SCIFACT) if query.id in judged]
    compared = retrievers + (["hybrid"] if {"bm25", "dense"} <= set(retrievers) else [])
    comparison = {
        retriever: compare(top10(index, queries, retriever), top10(rebuilt, queries, retriever))
        for retriever in compared
    }
    report(
        args.name,
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
