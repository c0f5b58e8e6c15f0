"""Adding passages to a kept realistic ColBERT index: how long it takes, and whether they are found.

Copies ``build/bench/realistic_colbert_<size>`` (kept by ``scale_colbert.py --keep``), adds
``--add`` passages of the realistic collection made with another seed (so their sentence
runs are new) through the engine's ``add_passages``, and searches for each of 20 of them with
a query of 16 of its own tokens spread over its length: the passage should come first, or
tie with the first (a passage made of the same sentences scores the same; each sentence is
in about 14 passages at 1M). Prints
one JSON line, kept as ``bench/results/add_colbert_<size>.json``.

With ``--recluster`` the copy is then re-clustered (:func:`odqa.index.late.recluster`: new
centroids trained on a sample of the stored tokens, every token re-encoded), timed: what
``odqa add`` advises once an index holds twice the tokens its centroids were trained on.

With ``--index`` another kept index is copied instead (``--tag`` names the result), e.g. the
1M index ``colbert_faults.py`` builds through ``odqa index``; the JSON says the copy's late
format before the add (an add to a format 2 index writes its inverted file anew).

    python bench/add_colbert.py --size 1000000 --add 1000
    python bench/add_colbert.py --size 100000 --add 1000 --recluster
    python bench/add_colbert.py --size 1000000 --add 1000 --tag f3 \
        --index build/bench/colbert_user_1000000/index/colbert
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from common import WORK, peak_rss_mb, report
from odqa.index.late import LateIndex, add_passages, recluster
from realistic_collection import RealisticCollection


def found_first(folder, embeddings: torch.Tensor, doclens: torch.Tensor, pids: np.ndarray) -> float:
    """Share of 20 added passages that come first (or tie with the first: a passage made of
    the same sentences scores the same) for a query of 16 of their own tokens, spread over
    the passage."""
    index = LateIndex(folder)
    offsets = torch.cumsum(doclens, 0) - doclens
    picks = np.linspace(0, len(pids) - 1, 20).astype(int)
    spread = [int(offsets[i]) + np.linspace(0, int(doclens[i]) - 1, 16).astype(int) for i in picks]
    Q = torch.stack([embeddings[torch.from_numpy(rows)] for rows in spread])
    qmask = torch.ones(Q.shape[:2], dtype=torch.bool)
    _, first = index.search(Q, qmask, 1)
    own = [
        index.exhaustive(Q[i : i + 1], qmask[:1], 1, subset=[pids[p]])[1][0, 0]
        for i, p in enumerate(picks)
    ]
    return float(np.mean(np.array(own) >= first[:, 0] - 1e-5 * np.abs(first[:, 0])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--add", type=int, default=1000)
    parser.add_argument("--recluster", action="store_true", help="then time a re-clustering")
    parser.add_argument("--index", type=Path, help="the late index to copy (not the kept one)")
    parser.add_argument("--tag", default="", help="appended to the result's name")
    args = parser.parse_args()
    torch.set_num_threads(2)
    kept = args.index or WORK / f"realistic_colbert_{args.size}"
    folder = WORK / f"add_colbert_{args.size}"
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    shutil.copytree(kept, folder)
    copy_s = time.perf_counter() - started
    format_before = LateIndex(folder).meta["format_version"]
    embeddings, doclens = RealisticCollection(args.size, seed=1).passages(0, args.add)
    embeddings = embeddings.float()
    started = time.perf_counter()
    result = add_passages(folder, embeddings, doclens)
    add_s = time.perf_counter() - started
    files = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    reclustered = {}
    if args.recluster:
        started = time.perf_counter()
        codec = recluster(folder)
        reclustered = {
            "recluster_s": round(time.perf_counter() - started, 1),
            "recluster_centroids": codec.num_centroids,
            "recluster_found_first": found_first(folder, embeddings, doclens, result.pids),
        }
    report(
        f"add_colbert_{args.size}"
        + ("_recluster" if args.recluster else "")
        + (f"_{args.tag}" if args.tag else ""),
        {
            "index": str(kept),
            "late_format_before": format_before,
            "passages_before": args.size,
            "added": args.add,
            "added_tokens": int(doclens.sum()),
            "add_s": round(add_s, 1),
            "copy_of_kept_index_s": round(copy_s, 1),
            "recluster_advised": bool(result.recluster_advised),
            "added_found_first": found_first(folder, embeddings, doclens, result.pids),
            "index_bytes_after": sum(files.values()),
            **reclustered,
            "peak_rss_mb": round(peak_rss_mb()),
        },
    )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
