"""Dense retrieval at 10k to 10M passages: synthetic vectors resampled from real SciFact
vectors, written as precomputed vectors, streamed into IVF-PQ with an exact refine.

SciFact's 5,183 documents (9,245 passages) are encoded once with the embedded MiniLM at bf16
(``odqa encode``'s code) and cached under ``bench/results/cache/``. Each synthetic vector is
``normalize(real[i] + noise)``, ``i`` drawn uniformly, ``noise`` Gaussian with standard
deviation ``NOISE`` (0.035) per dimension: two draws from the same real vector then have a
cosine of about 0.68 (1 / (1 + 384 x 0.035²)), a draw and its source about 0.82: neighbours,
not near-duplicates.
Queries: 200 SciFact claims, encoded by the same model.

Per size, three subprocesses (so no size shares another's peak memory): ``write`` (the vectors
folder, through ``VectorsWriter``), ``build`` (``DenseStore``: streamed to disk, trained on a
capped sample, added block by block), ``search`` (exact top-10 by streaming blockwise dot
products over the same vectors, then recall@10 and latency of the index, 1 and 2 threads).

Run: nice -n 5 .venv/bin/python bench/scale_dense.py --sizes 10000,100000,1000000,10000000

``write_planted_vectors`` is for the relevance bench: SciFact's real passage vectors followed
by one synthetic vector per distractor passage, as ``odqa encode`` would lay them out.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common import DATA, RESULTS, WORK, report
from odqa.corpus import read_queries
from odqa.encode import VectorsFolder, VectorsWriter
from odqa.index.builder import encode_corpus
from odqa.index.dense import DenseIndex, DenseSettings, DenseStore

SCIFACT = DATA / "beir-scifact"
CACHE = RESULTS / "cache"
REAL = CACHE / "scifact-minilm-dense"
QUERIES = CACHE / "scifact-minilm-queries.npy"
NOISE = 0.035
QUERY_COUNT = 200
BLOCK = 262_144
SHARD = 1_000_000
K = 10


def real_vectors() -> VectorsFolder:
    """SciFact's passage vectors (embedded MiniLM, bf16), encoded once and cached."""
    if not (REAL / "vectors.json").is_file():
        encode_corpus(SCIFACT, REAL, precision="bf16", show_progress=True, overwrite=True)
    return VectorsFolder(REAL)


def query_vectors() -> np.ndarray:
    """200 SciFact claims encoded as queries, cached."""
    if not QUERIES.is_file():
        from odqa.models import DenseEncoder

        encoder = DenseEncoder(precision="bf16")
        texts = [query.text for query in read_queries(SCIFACT)][:QUERY_COUNT]
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(QUERIES, encoder.encode_queries(texts))
    return np.load(QUERIES)


def load_real(folder: VectorsFolder) -> np.ndarray:
    cursor = folder.cursor()
    ids = []
    for shard in folder.shards:
        lines = (folder.folder / f"{shard.name}.passages.jsonl").read_text().splitlines()
        ids += [(record["doc_id"], record["chunk"]) for record in map(json.loads, lines)]
    vectors, _ = cursor.take(ids)
    cursor.close()
    return vectors


def synthetic(real: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` vectors ``normalize(real[i] + N(0, NOISE^2))``, seeded."""
    rng = np.random.default_rng(seed)
    picked = real[rng.integers(0, len(real), size=count)]
    noisy = picked + rng.standard_normal(picked.shape, dtype=np.float32) * NOISE
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def write_planted_vectors(
    out_dir: str | Path,
    real: VectorsFolder | str | Path,
    distractor_passage_ids: Sequence[tuple[str, int]],
    seed: int = 0,
    *,
    overwrite: bool = False,
) -> Path:
    """A vectors folder: SciFact's real passage vectors (``real``: a folder ``odqa encode``
    wrote, in SciFact's corpus order), then one synthetic vector per distractor passage id
    ``(doc_id, chunk)``, in the order given (the distractors' corpus order, after SciFact's).
    ``odqa index corpus.jsonl idx --retrievers dense --embeddings-from out_dir`` then builds
    SciFact planted among the distractors with no encoding."""
    source = real if isinstance(real, VectorsFolder) else VectorsFolder(real)
    vectors = load_real(source)
    with VectorsWriter(
        out_dir,
        "dense",
        source.encoder,
        source.dim,
        source.dtype,
        source.chunking,
        shard_passages=SHARD,
        overwrite=overwrite,
    ) as writer:
        first = 0
        for shard in source.shards:
            lines = (source.folder / f"{shard.name}.passages.jsonl").read_text().splitlines()
            ids = [(record["doc_id"], record["chunk"]) for record in map(json.loads, lines)]
            writer.add(ids, vectors[first : first + len(ids)])
            first += len(ids)
        for start in range(0, len(distractor_passage_ids), BLOCK):
            ids = list(distractor_passage_ids[start : start + BLOCK])
            writer.add(ids, synthetic(vectors, len(ids), seed + start))
    return Path(out_dir).resolve()


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def peak_mb() -> float:
    """This process's peak resident memory, MiB: VmHWM, which starts afresh at exec (Linux
    carries ``ru_maxrss`` over from the parent that forked, so it would not)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_write(size: int, work: Path) -> dict:
    real = real_vectors()
    vectors = load_real(real)
    start = time.perf_counter()
    with VectorsWriter(
        work / "vectors",
        "dense",
        real.encoder,
        real.dim,
        "float16",
        real.chunking,
        shard_passages=SHARD,
        overwrite=True,
    ) as writer:
        for first in range(0, size, BLOCK):
            count = min(BLOCK, size - first)
            ids = [(f"s{row}", 0) for row in range(first, first + count)]
            writer.add(ids, synthetic(vectors, count, seed=first))
    return {"write_s": round(time.perf_counter() - start, 1)}


def phase_build(size: int, work: Path, settings: DenseSettings) -> dict:
    import faiss

    faiss.omp_set_num_threads(1)  # 2 OpenMP threads on 2 shared cores trained PQ 14x slower
    folder = VectorsFolder(work / "vectors")
    start = time.perf_counter()
    shutil.rmtree(work / "index", ignore_errors=True)
    store = DenseStore(work / "index", settings, folder.dim)
    cursor = folder.cursor()
    for first in range(0, size, BLOCK):
        ids = [(f"s{row}", 0) for row in range(first, min(size, first + BLOCK))]
        store.add(cursor.take(ids)[0])
    cursor.close()
    built = store.finish()
    (work / "index" / "settings.json").write_text(json.dumps(built))
    return {"build_s": round(time.perf_counter() - start, 1), **built}


def exact_top(folder: VectorsFolder, queries: np.ndarray, size: int) -> np.ndarray:
    """Exact top-K rows per query, streaming the vectors by blocks."""
    best_scores = np.full((len(queries), K), -np.inf, np.float32)
    best_rows = np.zeros((len(queries), K), np.int64)
    cursor = folder.cursor()
    for first in range(0, size, BLOCK):
        ids = [(f"s{row}", 0) for row in range(first, min(size, first + BLOCK))]
        block, _ = cursor.take(ids)
        scores = queries @ block.T
        top = np.argpartition(-scores, K - 1, axis=1)[:, :K]
        both_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, 1)], 1)
        both_rows = np.concatenate([best_rows, top + first], 1)
        keep = np.argsort(-both_scores, axis=1, kind="stable")[:, :K]
        best_scores = np.take_along_axis(both_scores, keep, 1)
        best_rows = np.take_along_axis(both_rows, keep, 1)
    cursor.close()
    return best_rows


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    hits = [len(set(f.tolist()) & set(e.tolist())) for f, e in zip(found, exact, strict=True)]
    return round(float(np.mean(hits)) / K, 4)


def latency(index: DenseIndex, queries: np.ndarray, threads: int) -> dict:
    import faiss

    faiss.omp_set_num_threads(threads)
    index.search_vectors(queries[:5], K)  # warm the pages and the code paths
    times = []
    for query in queries:
        start = time.perf_counter()
        index.search_vectors(query[None], K)
        times.append((time.perf_counter() - start) * 1000)
    return {
        f"p50_ms_{threads}t": round(float(np.percentile(times, 50)), 2),
        f"p95_ms_{threads}t": round(float(np.percentile(times, 95)), 2),
    }


def phase_search(size: int, work: Path, nprobes: Sequence[int]) -> dict:
    folder = VectorsFolder(work / "vectors")
    queries = query_vectors()
    start = time.perf_counter()
    exact = exact_top(folder, queries, size)
    figures: dict = {"exact_s": round(time.perf_counter() - start, 1), "by_nprobe": []}
    built = json.loads((work / "index" / "settings.json").read_text())
    for nprobe in nprobes:
        refined = DenseIndex(work / "index" / "dense", nprobe=nprobe, refine=built["refine"])
        plain = DenseIndex(work / "index" / "dense", nprobe=nprobe, refine=0)
        row = {
            "nprobe": nprobe,
            "recall@10_refined": recall(refined.search_vectors(queries, K)[0], exact),
            "recall@10_pq_only": recall(plain.search_vectors(queries, K)[0], exact),
        }
        for threads in (1, 2):
            row.update(latency(refined, queries, threads))
        figures["by_nprobe"].append(row)
    return figures


def run_phase(phase: str, size: int, args: argparse.Namespace) -> dict:
    """Run one phase in a fresh interpreter; its figures and its own peak RSS."""
    command = [sys.executable, __file__, "--phase", phase, "--sizes", str(size)]
    command += ["--refine", str(args.refine), "--nprobes", args.nprobes]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{phase} {size} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--refine", type=int, default=DenseSettings().refine)
    parser.add_argument("--nprobes", default="16,32,64")
    parser.add_argument("--keep", action="store_true", help="keep each size's files")
    parser.add_argument("--phase", choices=("write", "build", "search"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    nprobes = [int(n) for n in args.nprobes.split(",")]
    if args.phase:
        work = WORK / "scale-dense" / str(sizes[0])
        work.mkdir(parents=True, exist_ok=True)
        if args.phase == "write":
            figures = phase_write(sizes[0], work)
        elif args.phase == "build":
            figures = phase_build(sizes[0], work, DenseSettings("ivfpq", refine=args.refine))
        else:
            figures = phase_search(sizes[0], work, nprobes)
        print(json.dumps({**figures, "peak_rss_mb": round(peak_mb(), 1)}))
        return
    real_vectors(), query_vectors()
    for size in sizes:
        work = WORK / "scale-dense" / str(size)
        written = run_phase("write", size, args)
        built = run_phase("build", size, args)
        searched = run_phase("search", size, args)
        figures = {
            "size": size,
            "dim": 384,
            "noise": NOISE,
            "write_s": written["write_s"],
            "write_peak_rss_mb": written["peak_rss_mb"],
            "faiss": built["faiss"],
            "refine": built["refine"],
            "build_s": built["build_s"],
            "build_faiss_threads": 1,
            "build_peak_rss_mb": built["peak_rss_mb"],
            "vectors_folder_bytes": folder_bytes(work / "vectors"),
            "index_bytes": folder_bytes(work / "index" / "dense"),
            "faiss_bytes": (work / "index" / "dense" / "dense.faiss").stat().st_size,
            "exact_top10_s": searched["exact_s"],
            "search_peak_rss_mb": searched["peak_rss_mb"],
            "by_nprobe": searched["by_nprobe"],
        }
        report(f"scale_dense_{size}", figures)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
