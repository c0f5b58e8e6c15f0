"""fast-plaid side of ``fastplaid_compare.py``; runs under fast-plaid's own interpreter.

Not importable from odqa's venv (it needs ``fast_plaid``, which pins another torch). Two
commands, each writing one JSON file:

    index  --docs D.npy --doclens L.npy --index DIR --nbits 2 --out OUT.json
    search --index DIR --queries Q.npy --qmask M.npy --start 0 --stop 300 --k 10
           --settings '[[n_ivf_probe, n_full_scores], ...]' --out OUT.json

Threads come from ``--threads``: torch's intra-op pool here, and the caller sets
OMP_NUM_THREADS / RAYON_NUM_THREADS in the environment (Rayon reads it once, at start).
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from fast_plaid import search

RAW_COPY = "embeddings.npy"  # uncompressed documents fast-plaid keeps for small indexes
LOCK = "plaid.lock"
CREATE_DEFAULTS = ("kmeans_niters", "max_points_per_centroid", "n_samples_kmeans", "seed")


def index_bytes(folder: Path) -> int:
    """Bytes of the index files, without the raw copy of the embeddings and the lock file."""
    return sum(
        path.stat().st_size
        for path in folder.rglob("*")
        if path.is_file() and path.name not in (RAW_COPY, LOCK)
    )


def build(args: argparse.Namespace) -> dict:
    """Time ``FastPlaid.create`` at its defaults but ``nbits``; count centroids and bytes."""
    embeddings = torch.from_numpy(np.load(args.docs))
    doclens = np.load(args.doclens).tolist()
    documents = list(embeddings.split(doclens))
    folder = Path(args.index)
    index = search.FastPlaid(index=str(folder), device="cpu")
    started = time.perf_counter()
    index.create(documents_embeddings=documents, nbits=args.nbits)
    seconds = time.perf_counter() - started
    defaults = inspect.signature(search.FastPlaid.create).parameters
    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    return {
        "total_s": round(seconds, 2),
        "num_centroids": int(np.load(folder / "centroids.npy", mmap_mode="r").shape[0]),
        "num_tokens": int(meta["num_embeddings"]),
        "nbits": int(meta["nbits"]),
        **{name: defaults[name].default for name in CREATE_DEFAULTS},
        "bytes_on_disk": index_bytes(folder),
        "fast_plaid_version": version("fast-plaid"),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def run_searches(args: argparse.Namespace) -> dict:
    """For each setting: a warm-up, then queries start..stop alone, timed; top-k pids of each."""
    Q = torch.from_numpy(np.load(args.queries)[args.start : args.stop])
    mask = torch.from_numpy(np.load(args.qmask)[args.start : args.stop])
    queries = [q[m] for q, m in zip(Q, mask, strict=True)]  # each query's real tokens only
    index = search.FastPlaid(index=args.index, device="cpu")
    results = []
    for probes, full in json.loads(args.settings):
        params = {"top_k": args.k, "n_ivf_probe": probes, "n_full_scores": full}
        index.search(queries_embeddings=queries[:1], show_progress=False, n_processes=1, **params)
        pids, times = [], []
        for query in queries:
            started = time.perf_counter()
            found = index.search(
                queries_embeddings=[query], show_progress=False, n_processes=1, **params
            )[0]
            times.append(1000 * (time.perf_counter() - started))
            row = [int(pid) for pid, _ in found][: args.k]
            pids.append(row + [-1] * (args.k - len(row)))
        results.append({"n_ivf_probe": probes, "n_full_scores": full, "pids": pids, "ms": times})
    return {"torch_threads": torch.get_num_threads(), "settings": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    index = commands.add_parser("index")
    index.add_argument("--docs", required=True)
    index.add_argument("--doclens", required=True)
    index.add_argument("--nbits", type=int, default=2)
    find = commands.add_parser("search")
    find.add_argument("--queries", required=True)
    find.add_argument("--qmask", required=True)
    find.add_argument("--start", type=int, default=0)
    find.add_argument("--stop", type=int, default=None)
    find.add_argument("--k", type=int, default=10)
    find.add_argument("--settings", required=True)
    for command in (index, find):
        command.add_argument("--index", required=True)
        command.add_argument("--threads", type=int, required=True)
        command.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = build(args) if args.command == "index" else run_searches(args)
    Path(args.out).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
