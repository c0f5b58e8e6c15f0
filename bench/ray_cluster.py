"""Builds and encoding on a local Ray cluster, against the single-process ones, in one run.

``--check``: BEIR SciFact indexed with BM25 + dense + ColBERT (the embedded MiniLM) twice,
in this process and on Ray (2 workers of 1 CPU): passages and BM25 files compared byte for
byte, dense vectors (max abs difference), ColBERT centroids and codes, nDCG@10 of every
retriever on the test queries.

``--throughput``: dense encoding (``encode_corpus``) of the first ``--docs`` SciFact
abstracts, in rounds, interleaved: in this process with 2 torch threads and with 1, and on
Ray with 1 worker and with 2 workers of 1 CPU each. Passages and tokens a second, scaling
efficiency (2 workers against twice 1) and Ray's overhead (1 worker against this process at
1 thread).

Run: .venv/bin/python bench/ray_cluster.py --check --throughput [--docs 600 --rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import faiss
import numpy as np
import torch

from common import DATA, WORK, report
from odqa.corpus import read_documents, read_qrels, read_queries
from odqa.encode import VectorsFolder
from odqa.evaluate.retrieval import evaluate_index
from odqa.index import Manifest, build_index
from odqa.index.builder import encode_corpus
from odqa.index.settings import RaySettings
from odqa.retrieve import Searcher

SCIFACT = DATA / "beir-scifact"
RETRIEVERS = ("bm25", "dense", "colbert", "hybrid")


def same_files(first: Path, second: Path, folder: str = "") -> dict[str, bool]:
    names = sorted(p.relative_to(first) for p in (first / folder).rglob("*") if p.is_file())
    return {str(n): (first / n).read_bytes() == (second / n).read_bytes() for n in names}


def dense_rows(index: Path) -> np.ndarray:
    stored = faiss.read_index(str(index / "dense" / "dense.faiss"))
    return stored.reconstruct_n(0, stored.ntotal)


def check() -> dict:
    """Same corpus, same options, built here and on Ray: what is equal, what differs."""
    options = {"retrievers": ["bm25", "dense", "colbert"], "overwrite": True}
    built: dict[str, Path] = {}
    seconds: dict[str, float] = {}
    for name, ray in (("here", None), ("ray", RaySettings(workers=2))):
        started = time.perf_counter()
        built[name] = build_index(SCIFACT, WORK / f"ray-check-{name}", ray=ray, **options)
        seconds[name] = round(time.perf_counter() - started, 1)
    here, there = built["here"], built["ray"]
    collection = {n: ok for n, ok in same_files(here, there).items() if "/" not in n}
    collection.pop("manifest.json")
    codes = [np.load(index / "colbert" / "codes.npy") for index in (here, there)]
    residuals = [np.load(index / "colbert" / "residuals.npy") for index in (here, there)]
    queries = read_queries(SCIFACT)
    qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
    ndcg = {
        name: {
            retriever: round(
                evaluate_index(Searcher(index), queries, qrels, retriever=retriever)["ndcg@10"], 4
            )
            for retriever in RETRIEVERS
        }
        for name, index in built.items()
    }
    return {
        "build_seconds": seconds,
        "counts": Manifest.read(here).counts,
        "built_on": Manifest.read(there).built_on,
        "collection_files_identical": collection,
        "bm25_files_identical": all(same_files(here, there, "bm25").values()),
        "dense_max_abs_difference": float(np.abs(dense_rows(here) - dense_rows(there)).max()),
        "colbert_centroids_identical": bool(
            np.array_equal(*(np.load(i / "colbert/codec/centroids.npy") for i in built.values()))
        ),
        "colbert_tokens": len(codes[0]),
        "colbert_codes_equal_share": float((codes[0] == codes[1]).mean()),
        "colbert_residual_rows_equal_share": float((residuals[0] == residuals[1]).all(1).mean()),
        "ndcg@10": ndcg,
    }


def first_documents(count: int) -> Path:
    """The first ``count`` SciFact documents as JSONL (the encoding's corpus)."""
    target = WORK / f"scifact-first-{count}.jsonl"
    if not target.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8") as out:
            for number, document in enumerate(read_documents(SCIFACT)):
                if number == count:
                    break
                record = {"id": document.id, "title": document.title, "text": document.text}
                out.write(json.dumps(record) + "\n")
    return target


def encode_once(corpus: Path, name: str, ray: RaySettings | None, threads: int) -> float:
    torch.set_num_threads(threads)
    target = WORK / f"ray-encode-{name}"
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    encode_corpus(corpus, target, ray=ray, batch_docs=64, overwrite=True)
    return time.perf_counter() - started


def throughput(docs: int, rounds: int) -> dict:
    """Seconds to encode the same passages four ways, interleaved ``rounds`` times."""
    corpus = first_documents(docs)
    ways = {
        "here_2_threads": (None, 2),
        "here_1_thread": (None, 1),
        "ray_1_worker": (RaySettings(workers=1), 1),
        "ray_2_workers": (RaySettings(workers=2), 1),
    }
    encode_once(corpus, "warm", None, 2)  # the model's first load, not timed
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, (ray, threads) in ways.items():
            times[name].append(encode_once(corpus, name, ray, threads))
    torch.set_num_threads(2)
    folder = VectorsFolder(WORK / "ray-encode-here_2_threads")
    median = {name: statistics.median(values) for name, values in times.items()}
    passages = folder.passages
    return {
        "documents": docs,
        "passages": passages,
        "rounds": rounds,
        "seconds": {name: [round(v, 1) for v in values] for name, values in times.items()},
        "passages_per_second": {name: round(passages / s, 1) for name, s in median.items()},
        "scaling_efficiency_2_workers": round(
            median["ray_1_worker"] / (2 * median["ray_2_workers"]), 3
        ),
        "ray_overhead_1_worker_vs_1_thread": round(
            median["ray_1_worker"] / median["here_1_thread"] - 1, 3
        ),
        "ray_2_workers_vs_here_2_threads": round(
            median["here_2_threads"] / median["ray_2_workers"], 3
        ),
        "load_average_before": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--throughput", action="store_true")
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--name", default="ray_cluster")
    args = parser.parse_args()
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    figures: dict = {"load_average_start": os.getloadavg()}
    if args.check:
        figures["check"] = check()
    if args.throughput:
        figures["throughput"] = throughput(args.docs, args.rounds)
    figures["load_average_end"] = os.getloadavg()
    report(args.name, figures)


if __name__ == "__main__":
    main()
