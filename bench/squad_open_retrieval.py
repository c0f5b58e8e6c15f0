"""SQuAD v1.1 dev as open retrieval: 2,067 paragraphs, 10,570 questions.

Top-1/5/20 accuracy (the gold paragraph among the top k) for BM25, dense and hybrid
(each fusion method).
Run: .venv/bin/python bench/squad_open_retrieval.py [--rebuild]
"""

from __future__ import annotations

import argparse
import time

from common import DATA, WORK, report
from odqa.corpus import read_qrels, read_queries
from odqa.evaluate.retrieval import evaluate_index
from odqa.index import BuildOptions, build_index
from odqa.retrieve import Searcher

SQUAD = DATA / "squad-v1.1" / "dev-v1.1.json"
CUTOFFS = (1, 5, 20)
RUNS = [("bm25", None), ("dense", None)] + [("hybrid", f) for f in ("zscore", "minmax", "rrf")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    target = WORK / "squad-dev"
    figures: dict = {}
    if args.rebuild or not target.exists():
        started = time.perf_counter()
        build_index(SQUAD, target, BuildOptions(overwrite=True, show_progress=True))
        figures["index_seconds"] = round(time.perf_counter() - started, 1)
    queries = read_queries(SQUAD)
    qrels = read_qrels(SQUAD)
    results = {}
    for retriever, fusion in RUNS:
        searcher = Searcher(target, fusion=fusion)
        started = time.perf_counter()
        metrics = evaluate_index(searcher, queries, qrels, retriever=retriever, accuracy_at=CUTOFFS)
        metrics["seconds"] = round(time.perf_counter() - started, 1)
        results[retriever if retriever != "hybrid" else f"hybrid-{fusion}"] = metrics
    figures["results"] = results
    report("squad_open_retrieval", figures)


if __name__ == "__main__":
    main()
