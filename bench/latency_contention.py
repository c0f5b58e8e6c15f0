"""ColBERT search latency when another process takes a core: libgomp's waits compared.

A synthetic late-interaction index (``--passages``, 60-140 tokens, dim 128) is searched one
query at a time at k=10 with 1 and 2 torch threads, first on a quiet machine, then while a
busy loop pinned to core 0 (``taskset -c 0``) competes. Each setting of libgomp's wait runs
in its own process (libgomp reads it when torch loads), in interleaved rounds so the host's
own drift touches every setting alike; the JSON line has every round and the medians.

    python bench/latency_contention.py [--rounds 5] [--settings 300000 odqa passive 1000]

``300000`` is libgomp's own default (odqa's before it chose its wait); ``odqa`` is what
``import odqa`` sets when the user set nothing (see ``odqa.threads``); ``passive`` is
``OMP_WAIT_POLICY=PASSIVE``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import odqa  # noqa: F401  before torch (common imports it): odqa.threads sets libgomp's wait
from common import WORK, report

SETTINGS_RUN = "--one"


def build(folder, passages: int) -> None:
    import torch

    from odqa.index.late import build_late_index, training_pids
    from odqa.index.late.storage import ranges
    from odqa.index.late.synthetic import make_collection

    embeddings, doclens, _ = make_collection(
        passages, 128, min_len=60, max_len=140, vocab=20_000, topics=200, seed=0
    )
    offsets = torch.cumsum(doclens, 0) - doclens
    sampled = training_pids(len(doclens))
    rows = torch.from_numpy(ranges(offsets.numpy()[sampled], doclens.numpy()[sampled]))
    with build_late_index(folder, overwrite=True, nbits=2) as writer:
        writer.train(embeddings[rows], num_tokens=len(embeddings), centroids=4096)
        for first in range(0, passages, 2000):
            lens = doclens[first : first + 2000]
            begin = int(offsets[first])
            writer.add(embeddings[begin : begin + int(lens.sum())], lens)


def measure(folder, passages: int, queries: int) -> dict:
    """p50 (ms) quiet and busy at 1 and 2 threads, in this process's libgomp setting."""
    import torch

    from odqa.index.late import LateIndex
    from odqa.index.late.synthetic import make_collection, make_queries

    embeddings, doclens, _ = make_collection(
        passages, 128, min_len=60, max_len=140, vocab=20_000, topics=200, seed=0
    )
    Q, qmask, _ = make_queries(embeddings, doclens, queries, length=32, seed=1)
    index = LateIndex(folder)

    def p50() -> float:
        index.search(Q[:1], qmask[:1], 10)
        times = []
        for i in range(len(Q)):
            start = time.perf_counter()
            index.search(Q[i : i + 1], qmask[i : i + 1], 10)
            times.append(1000 * (time.perf_counter() - start))
        return round(float(np.median(times)), 1)

    out = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        out[f"quiet_threads{threads}"] = p50()
    busy = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out[f"busy_threads{threads}"] = p50()
    finally:
        busy.kill()
    return out


def environment(setting: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    if setting == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    elif setting != "odqa":
        env["GOMP_SPINCOUNT"] = setting
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--settings", nargs="+", default=["300000", "odqa", "passive"])
    parser.add_argument(SETTINGS_RUN, help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = WORK / "latency_contention"
    if args.one is not None:
        print(json.dumps(measure(folder, args.passages, args.queries)))
        return
    load_before = Path("/proc/loadavg").read_text(encoding="ascii").split()[:3]
    build(folder, args.passages)
    rounds: dict[str, list[dict]] = {setting: [] for setting in args.settings}
    for number in range(args.rounds):
        for setting in args.settings:
            command = [sys.executable, *sys.argv, SETTINGS_RUN, setting]
            done = subprocess.run(
                command, env=environment(setting), capture_output=True, text=True, check=True
            )
            rounds[setting].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(number, setting, rounds[setting][-1], file=sys.stderr, flush=True)
    medians = {
        setting: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for setting, runs in rounds.items()
    }
    report(
        "latency_contention",
        {
            "passages": args.passages,
            "queries": args.queries,
            "load_before": load_before,
            "median_p50_ms": medians,
            "rounds": rounds,
        },
    )


if __name__ == "__main__":
    main()
