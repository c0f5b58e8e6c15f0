"""Speed on BEIR SciFact, side by side in one run.

1. BM25 queries/second: odqa's BM25 index vs calling bm25s directly on the same tokens and the
   same saved index (alternating rounds; the ratio is the figure).
2. Documents/second indexed and peak memory, BM25 alone and dense alone (each build in its own
   process so that its peak memory is its own).

Run: .venv/bin/python bench/speed.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import bm25s

from common import DATA, WORK, report
from odqa.corpus import read_queries
from odqa.index.analysis import analyzer_from_config
from odqa.index.bm25 import BM25Index
from odqa.index.manifest import Manifest

SCIFACT = DATA / "beir-scifact"
ROUNDS = 7
K = 10

BUILD_ONE = """
import json, sys, time
sys.path.insert(0, "bench")
from common import peak_rss_mb
from odqa.index import BuildOptions, Manifest, build_index
started = time.perf_counter()
path = build_index(sys.argv[1], sys.argv[2], BuildOptions(retrievers=[sys.argv[3]], overwrite=True))
seconds = time.perf_counter() - started
counts = Manifest.read(path).counts
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), **counts}))
"""


def build_in_subprocess(retriever: str) -> dict:
    target = WORK / f"scifact-{retriever}-only"
    out = subprocess.run(
        [sys.executable, "-c", BUILD_ONE, str(SCIFACT), str(target), retriever],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    figures["docs_per_second"] = round(figures["documents"] / figures["seconds"], 1)
    figures["seconds"] = round(figures["seconds"], 1)
    figures["peak_rss_mb"] = round(figures["peak_rss_mb"])
    return {retriever: figures}


def bm25_query_speed() -> dict:
    target = WORK / "scifact-bm25-only"
    settings = Manifest.read(target).retrievers["bm25"]
    analyzer = analyzer_from_config(settings["analyzer"])
    texts = [query.text for query in read_queries(SCIFACT)]
    started = time.perf_counter()
    tokens = analyzer.tokenize(texts)
    tokenize_qps = len(texts) / (time.perf_counter() - started)
    ours = BM25Index(target / "bm25")
    direct = bm25s.BM25.load(str(target / "bm25"), mmap=True, show_progress=False)
    ours_times, direct_times = [], []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        ours.search_tokens(tokens, K)
        ours_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        direct.retrieve(tokens, k=K, show_progress=False)
        direct_times.append(time.perf_counter() - started)
    ours_qps = len(texts) / statistics.median(ours_times)
    direct_qps = len(texts) / statistics.median(direct_times)
    return {
        "queries": len(texts),
        "k": K,
        "odqa_qps": round(ours_qps),
        "bm25s_direct_qps": round(direct_qps),
        "odqa_time_over_bm25s": round(direct_qps / ours_qps, 3),
        "query_tokenize_qps": round(tokenize_qps),
    }


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    indexing = {**build_in_subprocess("bm25"), **build_in_subprocess("dense")}
    report("speed", {"indexing": indexing, "bm25_search": bm25_query_speed()})


if __name__ == "__main__":
    main()
