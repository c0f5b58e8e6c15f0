"""odqa's late-interaction engine against fast-plaid on the same SciFact token embeddings.

1. Encode the first ``--docs`` SciFact documents and the test queries once (embedded MiniLM,
   plain layout), save them as float16 ``.npy`` under build/bench/fastplaid/.
2. Reference: exhaustive exact MaxSim over the uncompressed embeddings, top 10.
3. Index the same embeddings with nbits=2 and each engine's default centroids / k-means, 2
   threads each, timed (no encoding); fast-plaid runs in ``fastplaid_worker.py`` under its own
   venv (build/fastplaid-venv: it pins another torch).
4. Top-10 overlap with the reference at each engine's default search settings; then, climbing
   a ladder of settings from cheap to dear, each engine's cheapest setting that reaches the
   other's default overlap.
5. Latency of one query at a time at k=10 with 1 and 2 threads, at those settings, over the
   first ``--timed`` queries split into ``--rounds`` chunks timed alternately (ours,
   fast-plaid, ours, ...); ratios ours / fast-plaid of the p50s at equal overlap.

Run: .venv/bin/python bench/fastplaid_compare.py   (about 40 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from common import DATA, ROOT, WORK, peak_rss_mb, percentiles, report
from late_engine import build, overlap
from odqa.corpus import read_documents, read_qrels, read_queries
from odqa.index.late import ExactStore, LateIndex, plaid_defaults
from odqa.models.colbert import ColBERTEncoder

SCIFACT = DATA / "beir-scifact"
FOLDER = WORK / "fastplaid"
FASTPLAID_PYTHON = ROOT / "build" / "fastplaid-venv" / "bin" / "python"
WORKER = Path(__file__).resolve().parent / "fastplaid_worker.py"
OURS_INDEX = FOLDER / "odqa-index"
THEIRS_INDEX = FOLDER / "fastplaid-index"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")
K = 10
NBITS = 2
INDEX_THREADS = 2
# Search settings from cheap to dear, each engine's default among them. Ours are (ncells,
# centroid_score_threshold, ndocs), the last without pruning; fast-plaid's (n_ivf_probe,
# n_full_scores). Both decompress and score exactly the best quarter of ndocs / n_full_scores.
OURS_DEFAULT = plaid_defaults(K)
OURS_LADDER = [
    OURS_DEFAULT,
    (1, 0.5, 512),
    (2, 0.45, 1024),
    (4, 0.4, 2048),
    (4, 0.4, 4096),
    (8, 0.4, 4096),
    (16, -1.0, 8192),
]
THEIRS_DEFAULT = (8, 4096)  # FastPlaid.search's defaults
THEIRS_LADDER = [
    (2, 256),
    (4, 256),
    (8, 256),
    (8, 512),
    (8, 1024),
    (8, 2048),
    THEIRS_DEFAULT,
    (16, 4096),
    (32, 8192),
]


def encode(docs: int, limit: int | None) -> tuple[dict, dict]:
    """Encode the subset and save it; returns array paths and a description of the subset."""
    documents = list(itertools.islice(read_documents(SCIFACT), docs))
    texts = [f"{d.title} {d.text}".strip() for d in documents]
    qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
    queries = [q for q in read_queries(SCIFACT) if q.id in qrels][:limit]
    kept = {d.id for d in documents}
    encoder = ColBERTEncoder()
    started = time.perf_counter()
    embeddings, doclens = encoder.encode_documents(texts, show_progress=True)
    encode_s = time.perf_counter() - started
    Q, qmask = encoder.encode_queries([q.text for q in queries])
    FOLDER.mkdir(parents=True, exist_ok=True)
    paths = {name: FOLDER / f"{name}.npy" for name in ("docs", "doclens", "queries", "qmask")}
    np.save(paths["docs"], embeddings.half().numpy())
    np.save(paths["doclens"], doclens.numpy())
    np.save(paths["queries"], Q.half().numpy())
    np.save(paths["qmask"], qmask.numpy())
    subset = {
        "documents": len(documents),
        "tokens": int(doclens.sum()),
        "dim": int(embeddings.shape[1]),
        "queries": len(queries),
        "queries_with_a_relevant_doc_in_subset": sum(
            any(doc in kept and grade > 0 for doc, grade in qrels[q.id].items()) for q in queries
        ),
        "query_tokens_mean": round(float(qmask.sum(dim=1).float().mean()), 1),
        "encoder": encoder.describe()["model"],
        "encode_documents_s": round(encode_s, 1),
    }
    return paths, subset


def worker(command: str, threads: int, **options: object) -> dict:
    """Run one fast-plaid worker command with ``threads`` threads everywhere; its JSON result."""
    out = FOLDER / f"{command}.json"
    flags = [part for key, value in options.items() for part in (f"--{key}", str(value))]
    threads_env = {name: str(threads) for name in THREAD_VARIABLES}
    command_line = [str(FASTPLAID_PYTHON), str(WORKER), command, "--threads", str(threads)]
    subprocess.run(
        [*command_line, "--out", str(out), *flags],
        check=True,
        env={**os.environ, **threads_env},
        stdout=sys.stderr,
    )
    return json.loads(out.read_text(encoding="utf-8"))


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def index_both(paths: dict, embeddings: torch.Tensor, doclens: torch.Tensor) -> dict:
    """Build both indexes from the same embeddings, ours first; times, centroids, sizes."""
    torch.set_num_threads(INDEX_THREADS)
    ours = build(OURS_INDEX, embeddings.float(), doclens, NBITS)
    shutil.rmtree(THEIRS_INDEX, ignore_errors=True)
    theirs = worker(
        "index",
        INDEX_THREADS,
        docs=paths["docs"],
        doclens=paths["doclens"],
        index=THEIRS_INDEX,
        nbits=NBITS,
    )
    meta = LateIndex(OURS_INDEX).meta
    tokens = int(doclens.sum())
    size = folder_bytes(OURS_INDEX)
    ours |= {
        "num_centroids": meta["num_centroids"],
        "kmeans_niters": meta["kmeans_niters"],
        "kmeans_sample_tokens": meta["sample_tokens"],
        "seed": meta["seed"],
        "bytes_on_disk": size,
        "bytes_per_token": round(size / tokens, 2),
    }
    theirs["bytes_per_token"] = round(theirs["bytes_on_disk"] / tokens, 2)
    return {"threads": INDEX_THREADS, "ours": ours, "fastplaid": theirs}


def theirs_search(
    paths: dict, threads: int, settings: list[tuple], rows: tuple[int, int]
) -> list[dict]:
    """fast-plaid, queries ``rows`` one at a time at each setting: pids and milliseconds."""
    return worker(
        "search",
        threads,
        index=THEIRS_INDEX,
        queries=paths["queries"],
        qmask=paths["qmask"],
        start=rows[0],
        stop=rows[1],
        k=K,
        settings=json.dumps(settings),
    )["settings"]


def ours_search(
    index: LateIndex,
    Q: torch.Tensor,
    qmask: torch.Tensor,
    threads: int,
    settings: list[tuple],
    rows: tuple[int, int],
) -> list[dict]:
    """Ours, like :func:`theirs_search`: a warm-up, then each query alone at each setting."""
    torch.set_num_threads(threads)
    results = []
    for ncells, threshold, ndocs in settings:
        params = {"ncells": ncells, "centroid_score_threshold": threshold, "ndocs": ndocs}
        index.search(Q[:1], qmask[:1], K, **params)
        pids, times = [], []
        for i in range(*rows):
            started = time.perf_counter()
            found, _ = index.search(Q[i : i + 1], qmask[i : i + 1], K, **params)
            times.append(1000 * (time.perf_counter() - started))
            pids.append(found[0])
        results.append({"pids": pids, "ms": times})
    return results


def climb(
    ladder: list[tuple], known: dict[tuple, float], target: float, measure: Callable
) -> tuple[tuple, dict]:
    """The cheapest ladder setting whose overlap reaches ``target`` (else the best), and the
    overlaps of the settings tried; ``known`` holds overlaps already measured."""
    tried = {}
    for setting in ladder:
        tried[setting] = known[setting] if setting in known else measure(setting)
        if tried[setting] >= target:
            return setting, tried
    return max(tried, key=tried.get), tried


def match_overlap(
    index: LateIndex, Q: torch.Tensor, qmask: torch.Tensor, paths: dict, reference: np.ndarray
) -> tuple[dict, dict]:
    """Overlap at each engine's defaults, and the cheapest setting of each reaching the other's.

    Returns the quality figures and, per engine, the settings to time by name.
    """
    rows = (0, len(Q))

    def ours(setting: tuple) -> float:
        run = ours_search(index, Q, qmask, 2, [setting], rows)[0]
        return round(overlap(np.array(run["pids"]), reference), 4)

    def theirs(setting: tuple) -> float:
        run = theirs_search(paths, 2, [list(setting)], rows)[0]
        return round(overlap(np.array(run["pids"]), reference), 4)

    ours_default, theirs_default = ours(OURS_DEFAULT), theirs(THEIRS_DEFAULT)
    ours_match, ours_tried = climb(OURS_LADDER, {OURS_DEFAULT: ours_default}, theirs_default, ours)
    theirs_match, theirs_tried = climb(
        THEIRS_LADDER, {THEIRS_DEFAULT: theirs_default}, ours_default, theirs
    )
    quality = {
        "top10_overlap_vs_exhaustive": {
            "ours_default": ours_default,
            "fastplaid_default": theirs_default,
        },
        "ours_[ncells,threshold,ndocs]": {
            "default": list(OURS_DEFAULT),
            "tried": {str(list(s)): o for s, o in ours_tried.items()},
            "cheapest_reaching_fastplaid_default": list(ours_match),
            "reached": ours_tried[ours_match] >= theirs_default,
        },
        "fastplaid_[n_ivf_probe,n_full_scores]": {
            "default": list(THEIRS_DEFAULT),
            "tried": {str(list(s)): o for s, o in theirs_tried.items()},
            "cheapest_reaching_ours_default": list(theirs_match),
            "reached": theirs_tried[theirs_match] >= ours_default,
        },
    }
    settings = {
        "ours": {"default": OURS_DEFAULT, "at_fastplaid_default_overlap": ours_match},
        "fastplaid": {"default": THEIRS_DEFAULT, "at_ours_default_overlap": theirs_match},
    }
    return quality, settings


def named_percentiles(times: dict[tuple, list[float]], settings: dict[str, dict]) -> dict:
    """p50 / p95 of each engine's named settings (``{engine}_{name}``) from the
    milliseconds timed per (engine, setting)."""
    return {
        f"{engine}_{name}": percentiles(times[engine, setting])
        for engine, named in settings.items()
        for name, setting in named.items()
    }


def time_rounds(
    index: LateIndex,
    Q: torch.Tensor,
    qmask: torch.Tensor,
    paths: dict,
    settings: dict,
    queries: int,
    rounds: int,
) -> tuple[dict, dict]:
    """Latency per thread count, engine and setting over the first ``queries`` queries, split
    into ``rounds`` chunks timed alternately (ours, fast-plaid, ours, ...); p50 ratios."""
    bounds = np.linspace(0, min(queries, len(Q)), rounds + 1).astype(int)
    ours = list(dict.fromkeys(settings["ours"].values()))
    theirs = list(dict.fromkeys(settings["fastplaid"].values()))
    latency, ratios = {}, {}
    for threads in (1, 2):
        times: dict[tuple, list[float]] = {}
        for rows in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            ours_runs = ours_search(index, Q, qmask, threads, ours, rows)
            theirs_runs = theirs_search(paths, threads, [list(s) for s in theirs], rows)
            for engine, timed, results in (
                ("ours", ours, ours_runs),
                ("fastplaid", theirs, theirs_runs),
            ):
                for setting, run in zip(timed, results, strict=True):
                    times.setdefault((engine, setting), []).extend(run["ms"])
        runs = named_percentiles(times, settings)
        latency[f"threads{threads}"] = runs
        for label, ours_run, theirs_run in (
            ("defaults", "ours_default", "fastplaid_default"),
            ("at_ours_default_overlap", "ours_default", "fastplaid_at_ours_default_overlap"),
            (
                "at_fastplaid_default_overlap",
                "ours_at_fastplaid_default_overlap",
                "fastplaid_default",
            ),
        ):
            ratios[f"threads{threads}_{label}"] = round(
                runs[ours_run]["p50_ms"] / runs[theirs_run]["p50_ms"], 3
            )
    return latency, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000, help="first N SciFact documents")
    parser.add_argument("--queries", type=int, default=None, help="first N test queries")
    parser.add_argument("--timed", type=int, default=100, help="first N queries timed")
    parser.add_argument("--rounds", type=int, default=4, help="alternating timing rounds")
    args = parser.parse_args()
    if not FASTPLAID_PYTHON.exists():
        sys.exit(
            f"{FASTPLAID_PYTHON} missing: python3 -m venv build/fastplaid-venv && "
            "build/fastplaid-venv/bin/pip install fast-plaid==1.7.0.2110"
        )
    started = time.perf_counter()
    paths, subset = encode(args.docs, args.queries)
    embeddings = torch.from_numpy(np.load(paths["docs"]))
    doclens = torch.from_numpy(np.load(paths["doclens"]))
    Q = torch.from_numpy(np.load(paths["queries"])).float()
    qmask = torch.from_numpy(np.load(paths["qmask"]))
    reference, _ = ExactStore(embeddings, doclens).search(Q, qmask, K)
    indexing = index_both(paths, embeddings, doclens)
    index = LateIndex(OURS_INDEX)
    quality, settings = match_overlap(index, Q, qmask, paths, reference)
    latency, ratios = time_rounds(index, Q, qmask, paths, settings, args.timed, args.rounds)
    theirs = indexing["fastplaid"]
    report(
        "fastplaid_compare",
        {
            "subset": subset,
            "versions": {
                "odqa": version("odqa"),
                "torch_ours": torch.__version__,
                "fast_plaid": theirs["fast_plaid_version"],
                "torch_fastplaid": theirs["torch_version"],
            },
            "k": K,
            "nbits": NBITS,
            "indexing": indexing,
            "indexing_time_ratio_ours_over_fastplaid": round(
                indexing["ours"]["total_s"] / theirs["total_s"], 3
            ),
            "quality": quality,
            "timed_queries": min(args.timed, len(Q)),
            "timing_rounds": args.rounds,
            "latency_per_query_k10": latency,
            "latency_ratio_ours_over_fastplaid": ratios,
            "peak_rss_mb": round(peak_rss_mb()),
            "total_s": round(time.perf_counter() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
