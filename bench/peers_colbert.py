"""odqa's late-interaction (PLAID) engine against fast-plaid and WARP on the same token vectors.

The realistic collection of ``--size`` passages as ``bench/colbert_faults.py`` writes it
(build/bench/colbert_user_N/vectors: float16 token vectors, dim 128, SciFact's documents
planted) and SciFact's test queries encoded by the same model (the realistic cache):

1. Reference: exact MaxSim top 10 over the uncompressed float16 vectors (``ExactStore``).
2. The same vectors indexed with nbits=2 by odqa, fast-plaid and WARP (xtr-warp-rs), each at
   its own default centroids / k-means, 2 threads, each in a child process of its own (the
   peers under build/fastplaid-venv, ``fastplaid_worker.py``): build time (no encoding, no
   loading), the builder's peak RSS, bytes on disk and per token.
3. Top-10 overlap with the reference at each engine's defaults, and nDCG@10 of the planted
   SciFact documents; then, for each pair (odqa and fast-plaid, odqa and WARP), climbing a
   ladder of settings from cheap to dear, each one's cheapest setting that reaches the
   other's default overlap.
4. Latency of one query at a time at k=10 with 1 and 2 threads at those settings, over the
   first ``--timed`` queries split into ``--rounds`` chunks timed in turn (odqa, fast-plaid,
   WARP, the order rotated each round); p50 / p95, and ratios odqa / peer of the p50s at
   defaults and at equal overlap.

Indexes and queries go to build/bench/peers_N/ (``--reuse`` keeps indexes built before);
the result to bench/results/peers_colbert_N.json. ``--limit P`` takes the first P passages
and ``--queries Q`` the first Q test queries (a smoke run: its own folder and result name).
Where no ladder setting reaches the other's default overlap, the best one stands in and
``reached`` says false. WARP's ``bytes_searched`` leaves out the per-chunk copies of codes
and residuals it keeps for updates beside the compacted ones its search reads.

Run: nice -n 10 .venv/bin/python bench/peers_colbert.py --size 10000   (about an hour, 2 cores)
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from common import WORK, peak_rss_mb, report
from fastplaid_compare import (
    FASTPLAID_PYTHON,
    INDEX_THREADS,
    NBITS,
    OURS_LADDER,
    THREAD_VARIABLES,
    WORKER,
    K,
    climb,
    folder_bytes,
    named_percentiles,
    ours_search,
)
from fastplaid_compare import THEIRS_DEFAULT as FASTPLAID_DEFAULT
from fastplaid_compare import THEIRS_LADDER as FASTPLAID_LADDER
from late_engine import build, overlap
from odqa.encode.vectors import VectorsFolder
from odqa.evaluate.ir import evaluate_run
from odqa.index.late import ExactStore, LateIndex, plaid_defaults
from realistic_collection import VECTORS

ENGINES = ("ours", "fastplaid", "warp")
PEERS = ENGINES[1:]
# WARP's (nprobe, centroid_score_threshold, t_prime, max_candidates); None takes WARP's
# default for the index and query (xtr_warp.hyperparams.optimize: nprobe 2 + log10 of the
# tokens per centroid, threshold 0.5, t_prime and max_candidates from the density).
WARP_DEFAULT = (None, None, None, None)
WARP_LADDER = [
    (2, None, None, None),
    WARP_DEFAULT,
    (8, 0.45, 10_000, 20_000),
    (16, 0.4, 20_000, 40_000),
    (32, 0.3, 40_000, 80_000),
    (64, 0.2, 100_000, 200_000),
    (128, 0.0, 200_000, 400_000),
]
# Below odqa's defaults, so that a peer's cheap defaults meet an odqa setting of the same
# overlap (stage 3 keeps ndocs / 4, at least k, so 40 is the cheapest that still scores 10).
OURS_CHEAPER = [(1, 0.5, 40), (1, 0.5, 64), (1, 0.5, 128)]
KNOBS = {
    "ours": "[ncells,threshold,ndocs]",
    "fastplaid": "[n_ivf_probe,n_full_scores]",
    "warp": "[nprobe,threshold,t_prime,max_candidates]",
}


def load_vectors(folder: Path, limit: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Float16 token vectors (tokens, dim), doclens and doc ids of the first ``limit``
    passages of an odqa-vectors folder (all for 0); memory-mapped when one shard holds them."""
    tokens, lens, ids = [], [], []
    for shard in VectorsFolder(folder).shards:
        tokens.append(np.load(folder / f"{shard.name}.npy", mmap_mode="c"))
        lens.append(np.load(folder / f"{shard.name}.doclens.npy").astype(np.int64))
        with open(folder / f"{shard.name}.passages.jsonl", encoding="utf-8") as lines:
            ids += [json.loads(line)["doc_id"] for line in lines]
        if limit and len(ids) >= limit:
            break
    doclens = np.concatenate(lens)[: limit or None]
    embeddings = tokens[0] if len(tokens) == 1 else np.concatenate(tokens)
    return embeddings[: int(doclens.sum())], doclens, ids[: limit or None]


def build_ours(vectors: Path, limit: int, index: Path) -> dict:
    """odqa's build (in a spawned child, for its own peak RSS): phase times and peak RSS."""
    torch.set_num_threads(INDEX_THREADS)
    embeddings, doclens, _ = load_vectors(vectors, limit)
    times = build(index, torch.from_numpy(embeddings), torch.from_numpy(doclens), NBITS)
    return times | {"peak_rss_mb": round(peak_rss_mb())}


def peer(engine: str, command: str, threads: int, folder: Path, **options: object) -> dict:
    """Run one worker command for ``engine`` with ``threads`` threads; its JSON result."""
    out = folder / f"{engine}-{command}.json"
    options |= {"engine": engine, "threads": threads, "out": out}
    flags = [part for key, value in options.items() for part in (f"--{key}", str(value))]
    subprocess.run(
        [str(FASTPLAID_PYTHON), str(WORKER), command, *flags],
        check=True,
        env={**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}},
        stdout=sys.stderr,
    )
    return json.loads(out.read_text(encoding="utf-8"))


def build_all(vectors: Path, limit: int, folder: Path, tokens: int, reuse: bool) -> dict:
    """Build the three indexes (or, with ``reuse``, take those built before and their
    recorded figures); times, peak RSS, centroids, bytes."""
    indexing = {"threads": INDEX_THREADS}
    for engine in ENGINES:
        index, record = folder / engine, folder / f"{engine}-build-figures.json"
        if reuse and record.exists() and index.exists():
            indexing[engine] = json.loads(record.read_text(encoding="utf-8"))
            continue
        shutil.rmtree(index, ignore_errors=True)
        if engine == "ours":
            threads = {name: str(INDEX_THREADS) for name in THREAD_VARIABLES}
            os.environ.update(threads)  # the spawned child's OpenMP / MKL pools
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(1, mp_context=spawn) as child:
                figures = child.submit(build_ours, vectors, limit, index).result()
            meta = LateIndex(index).meta
            figures |= {
                "num_centroids": meta["num_centroids"],
                "kmeans_niters": meta["kmeans_niters"],
                "kmeans_sample_tokens": meta["sample_tokens"],
                "seed": meta["seed"],
                "bytes_on_disk": folder_bytes(index),
            }
        else:
            figures = peer(
                engine, "index", INDEX_THREADS, folder, vectors=vectors, limit=limit, index=index
            )
        figures["bytes_per_token"] = round(figures["bytes_on_disk"] / tokens, 2)
        record.write_text(json.dumps(figures), encoding="utf-8")
        indexing[engine] = figures
    return indexing


class Engines:
    """The three indexes of ``folder``, searched alike: each query alone, top ``K``."""

    def __init__(self, folder: Path, Q: torch.Tensor, qmask: torch.Tensor) -> None:
        self.folder, self.Q, self.qmask = folder, Q, qmask
        self.ours = LateIndex(folder / "ours")
        self.warp_defaults: dict = {}
        self.pids: dict[tuple[str, tuple], np.ndarray] = {}

    def search(self, engine: str, threads: int, settings: list, rows: tuple) -> list[dict]:
        """Queries ``rows`` one at a time at each setting: pids and milliseconds of each."""
        if engine == "ours":
            return ours_search(self.ours, self.Q, self.qmask, threads, settings, rows)
        found = peer(
            engine,
            "search",
            threads,
            self.folder,
            index=self.folder / engine,
            queries=self.folder / "queries.npy",
            qmask=self.folder / "qmask.npy",
            start=rows[0],
            stop=rows[1],
            k=K,
            settings=json.dumps(settings),
        )
        self.warp_defaults = found.get("warp_defaults_first_query", self.warp_defaults)
        return found["settings"]

    def top10(self, engine: str, setting: tuple) -> np.ndarray:
        """Every query's top 10 at ``setting`` (2 threads), measured once."""
        if (engine, setting) not in self.pids:
            run = self.search(engine, 2, [setting], (0, len(self.Q)))[0]
            self.pids[engine, setting] = np.array(run["pids"])
        return self.pids[engine, setting]


def match_overlap(
    engines: Engines, reference: np.ndarray, ladders: dict, defaults: dict
) -> tuple[dict, dict]:
    """Overlap at each engine's defaults; for each peer, odqa's cheapest setting reaching the
    peer's default overlap and the peer's reaching odqa's. Quality figures, settings to time."""
    measured: dict[str, dict] = {engine: {} for engine in ENGINES}

    def measurer(engine: str):
        def measure(setting: tuple) -> float:
            if setting not in measured[engine]:
                found = engines.top10(engine, setting)
                measured[engine][setting] = round(overlap(found, reference), 4)
            return measured[engine][setting]

        return measure

    at_default = {engine: measurer(engine)(defaults[engine]) for engine in ENGINES}
    settings = {engine: {"default": defaults[engine]} for engine in ENGINES}
    reached: dict[str, dict] = {engine: {} for engine in ENGINES}
    for other in PEERS:
        for engine, target in (("ours", other), (other, "ours")):
            found, _ = climb(
                ladders[engine], measured[engine], at_default[target], measurer(engine)
            )
            name = f"at_{target}_default_overlap"
            settings[engine][name] = found
            reached[engine][name] = measured[engine][found] >= at_default[target]
    quality = {"top10_overlap_vs_exact": {f"{e}_default": at_default[e] for e in ENGINES}}
    for engine in ENGINES:
        quality[f"{engine}_{KNOBS[engine]}"] = {
            "tried": {json.dumps(s): o for s, o in measured[engine].items()},
            **{name: list(s) for name, s in settings[engine].items()},
            "reached": reached[engine],
        }
    return quality, settings


def ndcg10(pids: np.ndarray, doc_ids: list[str], cache: dict) -> float:
    """Mean nDCG@10 (``odqa.evaluate``) of ranked ``pids`` (nq, 10) for the first test
    queries; a recombined passage is an unjudged document."""
    query_ids = cache["query_ids"][: len(pids)]
    run = {
        qid: {doc_ids[pid]: float(K - rank) for rank, pid in enumerate(row) if pid >= 0}
        for qid, row in zip(query_ids, pids.tolist(), strict=True)
    }
    qrels = {qid: cache["qrels"][qid] for qid in query_ids}
    return round(float(evaluate_run(run, qrels)["ndcg@10"]), 4)


def time_rounds(engines: Engines, settings: dict, queries: int, rounds: int) -> tuple[dict, dict]:
    """Latency per thread count, engine and setting over the first ``queries`` queries, in
    ``rounds`` chunks each timed on every engine in turn; ratios odqa / peer of the p50s."""
    bounds = np.linspace(0, min(queries, len(engines.Q)), rounds + 1).astype(int).tolist()
    latency, ratios = {}, {}
    for threads in (1, 2):
        times: dict[tuple, list[float]] = {}
        for turn, rows in enumerate(itertools.pairwise(bounds)):
            for engine in ENGINES[turn % 3 :] + ENGINES[: turn % 3]:
                timed = list(dict.fromkeys(settings[engine].values()))
                for setting, run in zip(
                    timed, engines.search(engine, threads, timed, rows), strict=True
                ):
                    times.setdefault((engine, setting), []).extend(run["ms"])
        runs = named_percentiles(times, settings)
        latency[f"threads{threads}"] = runs
        for other in PEERS:
            for label, ours, theirs in (
                ("defaults", "ours_default", f"{other}_default"),
                ("at_ours_default_overlap", "ours_default", f"{other}_at_ours_default_overlap"),
                (
                    f"at_{other}_default_overlap",
                    f"ours_at_{other}_default_overlap",
                    f"{other}_default",
                ),
            ):
                ratio = runs[ours]["p50_ms"] / runs[theirs]["p50_ms"]
                ratios[f"{other}_threads{threads}_{label}"] = round(ratio, 3)
    return latency, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000, help="the realistic collection's")
    parser.add_argument("--limit", type=int, default=0, help="first P passages only (smoke)")
    parser.add_argument("--queries", type=int, default=None, help="first N test queries")
    parser.add_argument("--timed", type=int, default=100, help="first N queries timed")
    parser.add_argument("--rounds", type=int, default=4, help="timing rounds")
    parser.add_argument("--reuse", action="store_true", help="keep indexes built before")
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    started = time.perf_counter()
    vectors = WORK / f"colbert_user_{args.size}" / "vectors"
    if not FASTPLAID_PYTHON.exists() or not (vectors / "vectors.json").exists():
        sys.exit(f"needs {FASTPLAID_PYTHON} and {vectors} (bench/colbert_faults.py --size N)")
    smoke = f"_limit{args.limit}" if args.limit else ""
    smoke += f"_queries{args.queries}" if args.queries else ""
    name = f"peers_colbert_{args.size}{smoke}"
    folder = WORK / name.replace("peers_colbert", "peers")
    folder.mkdir(parents=True, exist_ok=True)

    cache = torch.load(VECTORS, mmap=True)  # the test queries, encoded with the passages
    Q16, qmask = cache["queries"][: args.queries].half(), cache["qmask"][: args.queries]
    np.save(folder / "queries.npy", Q16.numpy())
    np.save(folder / "qmask.npy", qmask.numpy())
    Q = Q16.float()  # every engine gets the same float16 values
    embeddings, doclens, doc_ids = load_vectors(vectors, args.limit)
    tokens = int(doclens.sum())
    reference_started = time.perf_counter()
    torch.set_num_threads(2)
    store = ExactStore(torch.from_numpy(embeddings), torch.from_numpy(doclens))
    reference, _ = store.search(Q, qmask, K)
    reference_s = time.perf_counter() - reference_started
    del store, embeddings

    indexing = build_all(vectors, args.limit, folder, tokens, args.reuse)
    engines = Engines(folder, Q, qmask)
    ours_default = plaid_defaults(K, len(doclens))
    defaults = {"ours": ours_default, "fastplaid": FASTPLAID_DEFAULT, "warp": WARP_DEFAULT}
    ladders = {
        "ours": sorted(
            {*OURS_CHEAPER, *OURS_LADDER, ours_default}, key=lambda s: (s[2], s[0], -s[1])
        ),
        "fastplaid": FASTPLAID_LADDER,
        "warp": WARP_LADDER,
    }
    quality, settings = match_overlap(engines, reference, ladders, defaults)
    quality["warp_defaults_first_query"] = engines.warp_defaults
    quality["ndcg@10_planted_scifact"] = {"exact": ndcg10(reference, doc_ids, cache)} | {
        f"{engine}_default": ndcg10(engines.top10(engine, defaults[engine]), doc_ids, cache)
        for engine in ENGINES
    }
    latency, ratios = time_rounds(engines, settings, args.timed, args.rounds)
    fastplaid, warp = indexing["fastplaid"], indexing["warp"]
    report(
        name,
        {
            "collection": {
                "vectors": str(vectors),
                "passages": len(doclens),
                "tokens": tokens,
                "dim": int(Q.shape[2]),
                "planted_scifact_documents": sum(not d.startswith("p") for d in doc_ids),
                "queries": len(Q),
                "query_tokens": int(qmask.sum(dim=1).float().mean()),
                "encoder": cache["model"],
            },
            "versions": {
                "odqa": version("odqa"),
                "torch_ours": torch.__version__,
                "fast_plaid": fastplaid["version"],
                "xtr_warp_rs": warp["version"],
                "torch_peers": fastplaid["torch_version"],
            },
            "k": K,
            "nbits": NBITS,
            "exact_reference_s": round(reference_s, 1),
            "indexing": indexing,
            "indexing_time_ratio_ours_over": {
                peer: round(indexing["ours"]["total_s"] / indexing[peer]["total_s"], 3)
                for peer in PEERS
            },
            "quality": quality,
            "timed_queries": min(args.timed, len(Q)),
            "timing_rounds": args.rounds,
            "latency_per_query_k10": latency,
            "latency_p50_ratio_ours_over": ratios,
            "peak_rss_mb_bench_process": round(peak_rss_mb()),
            "load_average_at_start": [round(x, 2) for x in load_at_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "total_s": round(time.perf_counter() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
