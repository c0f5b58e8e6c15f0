"""fast-plaid and WARP (xtr-warp-rs) side of ``fastplaid_compare.py`` and ``peers_colbert.py``;
runs under the peers' own interpreter.

Not importable from odqa's venv (it needs ``fast_plaid`` and ``xtr_warp``, which pin another
torch). Two commands, each writing one JSON file; ``--engine`` picks fast-plaid (the default)
or WARP:

    index  --docs D.npy --doclens L.npy --index DIR --nbits 2 --out OUT.json
    index  --vectors DIR [--limit P] --index DIR --nbits 2 --engine warp --out OUT.json
    search --index DIR --queries Q.npy --qmask M.npy --start 0 --stop 300 --k 10
           --settings '[[n_ivf_probe, n_full_scores], ...]' --out OUT.json
    search ... --engine warp
           --settings '[[nprobe, centroid_score_threshold, t_prime, max_candidates], ...]'

``--vectors`` reads an odqa-vectors folder (its first ``--limit`` passages) instead of the
two arrays; a WARP setting's ``null`` is WARP's own default (``xtr_warp.hyperparams``).
Threads come from ``--threads``: torch's intra-op pool here, WARP's ``num_threads``, and the
caller sets OMP_NUM_THREADS / RAYON_NUM_THREADS in the environment (Rayon reads it once).
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from fast_plaid import search
from xtr_warp import XTRWarp

from common import peak_rss_mb

RAW_COPY = "embeddings.npy"  # uncompressed documents fast-plaid keeps for small indexes
LOCK = "plaid.lock"
CREATE_DEFAULTS = ("kmeans_niters", "max_points_per_centroid", "n_samples_kmeans", "seed")
WARP_KNOBS = ("nprobe", "centroid_score_threshold", "t_prime", "max_candidates")
WARP_DEFAULTS = ("bound", "nprobe", "centroid_score_threshold", "max_candidates", "t_prime")
# WARP keeps each build chunk's codes and residuals (for updates) beside the compacted
# copies its search reads.
WARP_CHUNK_COPY = re.compile(r"\d+\.(codes|residuals)\.npy")


def index_bytes(folder: Path, leave_out: re.Pattern | None = None) -> int:
    """Bytes of the index files, without the raw copy of the embeddings and the lock file
    (nor the files whose names ``leave_out`` matches)."""
    return sum(
        path.stat().st_size
        for path in folder.rglob("*")
        if path.is_file()
        and path.name not in (RAW_COPY, LOCK)
        and not (leave_out and leave_out.fullmatch(path.name))
    )


def documents(args: argparse.Namespace) -> list[torch.Tensor]:
    """Each document's float16 token vectors: from ``--docs`` / ``--doclens``, or the first
    ``--limit`` passages of the odqa-vectors folder ``--vectors`` (memory-mapped)."""
    if not args.vectors:
        return list(torch.from_numpy(np.load(args.docs)).split(np.load(args.doclens).tolist()))
    folder = Path(args.vectors)
    out: list[torch.Tensor] = []
    for shard in json.loads((folder / "vectors.json").read_text(encoding="utf-8"))["shards"]:
        tokens = torch.from_numpy(np.load(folder / f"{shard['name']}.npy", mmap_mode="c"))
        out += tokens.split(np.load(folder / f"{shard['name']}.doclens.npy").tolist())
        if args.limit and len(out) >= args.limit:
            break
    return out[: args.limit or None]


def build(args: argparse.Namespace) -> dict:
    """Time the engine's ``create`` at its defaults but ``nbits``; count centroids and bytes."""
    docs = documents(args)
    folder = Path(args.index)
    warp = args.engine == "warp"
    started = time.perf_counter()
    if warp:
        XTRWarp(index=str(folder)).create(
            embeddings_source=docs, device="cpu", nbits=args.nbits, show_progress=False
        )
    else:
        index = search.FastPlaid(index=str(folder), device="cpu")
        index.create(documents_embeddings=docs, nbits=args.nbits)
    seconds = time.perf_counter() - started
    create = XTRWarp.create if warp else search.FastPlaid.create
    defaults = inspect.signature(create).parameters
    meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    package = "xtr-warp-rs" if warp else "fast-plaid"
    searched = {"bytes_searched": index_bytes(folder, WARP_CHUNK_COPY)} if warp else {}
    return {
        "total_s": round(seconds, 2),
        "peak_rss_mb": round(peak_rss_mb()),
        "num_centroids": int(np.load(folder / "centroids.npy", mmap_mode="r").shape[0]),
        "num_tokens": int(meta["num_embeddings"]),
        "nbits": int(meta["nbits"]),
        **{name: defaults[name].default for name in CREATE_DEFAULTS},
        "bytes_on_disk": index_bytes(folder),
        **searched,
        "version": version(package),
        "fast_plaid_version": version("fast-plaid"),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def searcher(args: argparse.Namespace, queries: list[torch.Tensor]):
    """The loaded index, a search of one query at one setting (top-k pairs), and WARP's
    resolved defaults for the first query (None for fast-plaid)."""
    if args.engine == "fastplaid":
        index = search.FastPlaid(index=args.index, device="cpu")

        def run(query: torch.Tensor, setting: list) -> list:
            probes, full = setting
            return index.search(
                queries_embeddings=[query],
                top_k=args.k,
                n_ivf_probe=probes,
                n_full_scores=full,
                show_progress=False,
                n_processes=1,
            )[0]

        return run, None
    warp = XTRWarp(index=args.index)
    warp.load(device="cpu", dtype=torch.float32, mmap=True)
    meta = json.loads((Path(args.index) / "metadata.json").read_text(encoding="utf-8"))
    tokens = int(meta["num_embeddings"])

    def run(query: torch.Tensor, setting: list) -> list:
        knobs = dict(zip(WARP_KNOBS, setting, strict=True))
        for name in ("t_prime", "max_candidates"):  # a ladder's, capped as WARP caps its own
            knobs[name] = knobs[name] and min(knobs[name], tokens)
        return warp.search(
            queries_embeddings=query,
            top_k=args.k,
            num_threads=args.threads,
            show_progress=False,
            **knobs,
        )[0]

    first = warp.optimize_hyperparams(args.k, queries[0][None].float())
    return run, dict(zip(WARP_DEFAULTS, first, strict=True))


def run_searches(args: argparse.Namespace) -> dict:
    """For each setting: a warm-up, then queries start..stop alone, timed; top-k pids of each."""
    Q = torch.from_numpy(np.load(args.queries)[args.start : args.stop])
    mask = torch.from_numpy(np.load(args.qmask)[args.start : args.stop])
    queries = [q[m] for q, m in zip(Q, mask, strict=True)]  # each query's real tokens only
    run, defaults = searcher(args, queries)
    results = []
    for setting in json.loads(args.settings):
        run(queries[0], setting)
        pids, times = [], []
        for query in queries:
            started = time.perf_counter()
            found = run(query, setting)
            times.append(1000 * (time.perf_counter() - started))
            row = [int(pid) for pid, _ in found][: args.k]
            pids.append(row + [-1] * (args.k - len(row)))
        entry = {"setting": setting, "pids": pids, "ms": times}
        if args.engine == "fastplaid":
            entry |= {"n_ivf_probe": setting[0], "n_full_scores": setting[1]}
        results.append(entry)
    found = {"torch_threads": torch.get_num_threads(), "settings": results}
    return found if defaults is None else {**found, "warp_defaults_first_query": defaults}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    index = commands.add_parser("index")
    index.add_argument("--docs")
    index.add_argument("--doclens")
    index.add_argument("--vectors", help="an odqa-vectors folder instead of --docs/--doclens")
    index.add_argument("--limit", type=int, default=0, help="first P passages of --vectors")
    index.add_argument("--nbits", type=int, default=2)
    find = commands.add_parser("search")
    find.add_argument("--queries", required=True)
    find.add_argument("--qmask", required=True)
    find.add_argument("--start", type=int, default=0)
    find.add_argument("--stop", type=int, default=None)
    find.add_argument("--k", type=int, default=10)
    find.add_argument("--settings", required=True)
    for command in (index, find):
        command.add_argument("--engine", choices=("fastplaid", "warp"), default="fastplaid")
        command.add_argument("--index", required=True)
        command.add_argument("--threads", type=int, required=True)
        command.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = build(args) if args.command == "index" else run_searches(args)
    Path(args.out).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
