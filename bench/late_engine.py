"""Late-interaction engine on synthetic clustered token embeddings: size, speed, agreement.

Reports indexing time (codec training, compression, inverted file; no encoder), bytes per
token against float16, top-10 overlap of PLAID search with exhaustive MaxSim, and per-query
search latency at k=10 and k=100 with 1 and 2 torch threads.

    python bench/late_engine.py [--passages 5000] [--min-len 200] [--max-len 300] [--dim 128]
"""

from __future__ import annotations

import argparse
import shutil
import time

import numpy as np
import torch

from common import WORK, peak_rss_mb, report
from odqa.index.late import ExactStore, LateIndex, build_late_index, training_pids
from odqa.index.late.storage import ranges
from odqa.index.late.synthetic import make_collection, make_queries

CHUNK_PASSAGES = 1000


def overlap(found: np.ndarray, expected: np.ndarray) -> float:
    pairs = zip(found, expected, strict=True)
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in pairs]))


def build(folder, embeddings: torch.Tensor, doclens: torch.Tensor, nbits: int) -> dict:
    """Index the collection in chunks; returns the time of each phase."""
    offsets = torch.cumsum(doclens, 0) - doclens
    sampled = training_pids(len(doclens))
    rows = torch.from_numpy(ranges(offsets.numpy()[sampled], doclens.numpy()[sampled]))
    times = {}
    start = time.perf_counter()
    with build_late_index(folder, overwrite=True, nbits=nbits) as writer:
        writer.train(embeddings[rows], num_tokens=len(embeddings))
        times["train_s"] = time.perf_counter() - start
        for first in range(0, len(doclens), CHUNK_PASSAGES):
            lens = doclens[first : first + CHUNK_PASSAGES]
            begin = int(offsets[first])
            writer.add(embeddings[begin : begin + int(lens.sum())], lens)
        times["add_s"] = time.perf_counter() - start - times["train_s"]
    times["total_s"] = time.perf_counter() - start
    return {key: round(value, 2) for key, value in times.items()}


def latency(index: LateIndex, Q: torch.Tensor, qmask: torch.Tensor, k: int, **plaid) -> dict:
    """p50 / p95 milliseconds of one-query searches, after one warm-up query."""
    index.search(Q[:1], qmask[:1], k, **plaid)
    times = []
    for i in range(len(Q)):
        start = time.perf_counter()
        index.search(Q[i : i + 1], qmask[i : i + 1], k, **plaid)
        times.append(1000 * (time.perf_counter() - start))
    return {
        "p50_ms": round(float(np.median(times)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=5000)
    parser.add_argument("--min-len", type=int, default=200)
    parser.add_argument("--max-len", type=int, default=300)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--nbits", type=int, default=2)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()

    embeddings, doclens, _ = make_collection(
        args.passages,
        args.dim,
        min_len=args.min_len,
        max_len=args.max_len,
        vocab=20_000,
        topics=200,
        seed=0,
    )
    Q, qmask, _ = make_queries(embeddings, doclens, args.queries, length=32, seed=1)
    folder = WORK / "late_engine"
    indexing = build(folder, embeddings, doclens, args.nbits)

    index = LateIndex(folder)
    tokens = index.meta["num_tokens"]
    stored = {
        name: (folder / index.meta["files"][name]).stat().st_size
        for name in ("codes", "residuals", "ivf", "ivf_lengths", "doclens", "offsets", "deleted")
    }
    codec_bytes = sum(p.stat().st_size for p in (folder / index.meta["files"]["codec"]).iterdir())
    total = sum(stored.values()) + codec_bytes

    exhaustive = {k: index.exhaustive(Q, qmask, k)[0] for k in (10, 100)}
    exact = ExactStore(embeddings, doclens).search(Q, qmask, 10)[0]
    agreement = {}
    for k in (10, 100):
        found = index.search(Q, qmask, k)[0]
        agreement[f"k{k}"] = {
            "top10_overlap_vs_exhaustive": round(overlap(found[:, :10], exhaustive[k][:, :10]), 4),
            f"top{k}_overlap_vs_exhaustive": round(overlap(found, exhaustive[k]), 4),
        }
    agreement["exhaustive_top10_overlap_vs_uncompressed"] = round(
        overlap(exhaustive[10][:, :10], exact), 4
    )

    latencies = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for k in (10, 100):
            latencies[f"threads{threads}_k{k}"] = latency(index, Q, qmask, k)

    report(
        "late_engine",
        {
            "passages": args.passages,
            "tokens": tokens,
            "dim": args.dim,
            "nbits": args.nbits,
            "num_centroids": index.meta["num_centroids"],
            "indexing": indexing,
            "bytes_per_token": {
                "codes_and_residuals": round((stored["codes"] + stored["residuals"]) / tokens, 2),
                "all_files": round(total / tokens, 2),
                "float16": 2 * args.dim,
            },
            "ivf_bytes": stored["ivf"] + stored["ivf_lengths"],
            "ivf_entries_per_token": round(int(index.store.ivf_lengths.sum()) / tokens, 3),
            "agreement": agreement,
            "latency_per_query": latencies,
            "peak_rss_mb": round(peak_rss_mb(), 1),
        },
    )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
