"""Two late-interaction indexes of the same collection searched side by side: PLAID at its
defaults, k=10, one SciFact test query at a time on 2 torch threads, in ``--rounds``
interleaved rounds (the order turned each round), so both see the same machine.

    python bench/late_pair.py build/bench/realistic_colbert_1000000 \\
        build/bench/colbert_user_1000000/index/colbert
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from colbert_faults import test_queries
from common import percentiles, report
from ivf_formats import latencies
from odqa.index.late import LateIndex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("indexes", type=Path, nargs=2, help="two late index folders")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    Q, qmask = (part[: args.queries] for part in test_queries())
    indexes = {str(folder): LateIndex(folder) for folder in args.indexes}
    for index in indexes.values():
        index.search(Q[:5], qmask[:5], 10)  # warm
    times: dict[str, list[float]] = {name: [] for name in indexes}
    load = [round(value, 2) for value in os.getloadavg()]
    for turn in range(args.rounds):
        order = list(indexes.items())
        for name, index in order if turn % 2 == 0 else order[::-1]:
            times[name] += latencies(index, Q, qmask)
    figures = {
        name: {
            "late_format": index.meta["format_version"],
            **percentiles([1000 * value for value in times[name]]),
        }
        for name, index in indexes.items()
    }
    passages = next(iter(indexes.values())).num_passages
    report(
        f"late_pair_{passages}",
        {"threads": args.threads, "indexes": figures, "load_before": load, "queries": len(Q)},
    )


if __name__ == "__main__":
    main()
