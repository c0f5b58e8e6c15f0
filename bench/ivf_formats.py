"""What the coded inverted file costs in search: one index, its lists as written (format 2's
3-byte pids, or format 3's Elias-Fano lists) and the other way, timed side by side.

The lists are turned in memory (nothing on disk changes), so both searches see the same
passages, codes and residuals, and return the same pids (checked). PLAID at its defaults,
k=10, one SciFact test query at a time, on 1 and 2 torch threads, in ``--rounds``
interleaved rounds (narrow, coded, narrow, ...).

    python bench/ivf_formats.py --index build/bench/realistic_colbert_1000000
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from colbert_faults import test_queries
from common import percentiles, report
from odqa.index.late import LateIndex
from odqa.index.late.postings import PostingLists, encode
from odqa.index.late.storage import LIST_BLOCK, NarrowLists, pid_blocks


def narrow(pids: np.ndarray, passages: int) -> np.ndarray:
    """(n, width) uint8: format 2's pids, in as few little-endian bytes as ``passages`` need."""
    width = max(1, (max(0, passages - 1).bit_length() + 7) // 8)
    return pids.astype("<u4").view(np.uint8).reshape(-1, 4)[:, :width]


def turned(
    lists: PostingLists | NarrowLists, lengths: np.ndarray, passages: int
) -> PostingLists | NarrowLists:
    """The same lists in the other format, in memory."""
    cells = [np.arange(start, stop) for start, stop in pid_blocks(lengths, LIST_BLOCK)]
    if isinstance(lists, NarrowLists):
        parts = [encode(lists.read(block), lengths[block]) for block in cells]
        data = np.concatenate([coded for coded, _, _ in parts])
        sizes = np.concatenate([sizes for _, sizes, _ in parts])
        widths = np.concatenate([widths for _, _, widths in parts])
        return PostingLists(data, np.concatenate([[0], np.cumsum(sizes)]), widths, lengths)
    pids = np.concatenate([lists.read(block) for block in cells])
    return NarrowLists(narrow(pids, passages), lengths)


def latencies(index: LateIndex, Q: torch.Tensor, qmask: torch.Tensor) -> list[float]:
    """Seconds of each query searched alone at k=10."""
    seconds = []
    for row in range(len(Q)):
        start = time.perf_counter()
        index.search(Q[row : row + 1], qmask[row : row + 1], 10)
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="a late index folder")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    index = LateIndex(args.index)
    store = index.store
    Q, qmask = (part[: args.queries] for part in test_queries())
    started = time.perf_counter()
    other = turned(store.lists, np.asarray(store.ivf_lengths), index.num_passages)
    turn_s = time.perf_counter() - started
    formats = {type(store.lists).__name__: store.lists, type(other).__name__: other}
    found = {}
    for name, lists in formats.items():
        store.lists = lists
        found[name] = index.search(Q, qmask, 10)[0]
    first, second = found.values()
    figures: dict = {
        "index": str(args.index),
        "passages": index.num_passages,
        "tokens": int(store.meta["num_tokens"]),
        "list_bytes": {name: int(lists.data.nbytes) for name, lists in formats.items()},
        "turn_s": round(turn_s, 1),
        "same_pids": bool(np.array_equal(first, second)),
        "load_before": [round(load, 2) for load in os.getloadavg()],
    }
    for threads in (1, 2):
        torch.set_num_threads(threads)
        times: dict[str, list[float]] = {name: [] for name in formats}
        for _ in range(args.rounds):
            for name, lists in formats.items():
                store.lists = lists
                times[name] += latencies(index, Q, qmask)
        figures[f"threads{threads}"] = {
            name: percentiles([1000 * value for value in values]) for name, values in times.items()
        }
        p50 = figures[f"threads{threads}"]
        figures[f"threads{threads}"]["coded_over_narrow"] = round(
            p50["PostingLists"]["p50_ms"] / p50["NarrowLists"]["p50_ms"], 3
        )
    report(f"ivf_formats_{index.num_passages}", figures)


if __name__ == "__main__":
    main()
