"""BEIR SciFact test (300 queries): nDCG@10 etc. for BM25, dense, and each hybrid fusion.

Builds the index once (bm25 + dense, defaults) under build/bench/, timing it, then
evaluates. Run: .venv/bin/python bench/retrieval_scifact.py [--rebuild]
"""

from __future__ import annotations

import argparse
import time

from common import DATA, WORK, peak_rss_mb, report
from odqa.corpus import read_qrels, read_queries
from odqa.evaluate.retrieval import evaluate_index
from odqa.index import BuildOptions, Manifest, build_index
from odqa.retrieve import Searcher

SCIFACT = DATA / "beir-scifact"
RUNS = [("bm25", None), ("dense", None)] + [("hybrid", f) for f in ("zscore", "minmax", "rrf")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    target = WORK / "scifact"
    figures: dict = {}
    if args.rebuild or not target.exists():
        started = time.perf_counter()
        build_index(SCIFACT, target, BuildOptions(overwrite=True, show_progress=True))
        figures["index_seconds"] = round(time.perf_counter() - started, 1)
        figures["index_peak_rss_mb"] = round(peak_rss_mb())
    manifest = Manifest.read(target)
    figures["counts"] = manifest.counts
    figures["chunking"] = manifest.chunking
    queries = read_queries(SCIFACT)
    qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
    results = {}
    for retriever, fusion in RUNS:
        searcher = Searcher(target, fusion=fusion)
        name = retriever if retriever != "hybrid" else f"hybrid-{fusion}"
        started = time.perf_counter()
        metrics = evaluate_index(searcher, queries, qrels, retriever=retriever)
        metrics["seconds"] = round(time.perf_counter() - started, 2)
        results[name] = metrics
    figures["results"] = results
    report("retrieval_scifact", figures)


if __name__ == "__main__":
    main()
