"""The late-interaction engine at growing sizes, without encoding: build, disk, memory, search.

Two sources of passages (``--source``):

- ``realistic`` (the default): runs of real sentences with SciFact's documents planted
  (``bench/realistic_collection.py``, encoded once by a ColBERT trained here, dim 128); the
  SciFact test queries also give nDCG@10 of the planted documents.
- ``resampled``: tokens resampled from real SciFact token vectors
  (``bench/scale_colbert_vectors.py``, the embedded MiniLM turned down to dim 128): a
  passage takes the length of a random real passage, each token a random real token plus
  Gaussian noise of norm about ``--noise``, re-normalised.

Passages are generated chunk by chunk (nothing but the index is kept). Each size runs in its
own process (so peak RSS is per size) and prints one JSON line, kept as
``bench/results/<name>_<passages>.json``: build time split into centroid training,
compression and finishing (inverted file, arrays), peak RSS, bytes per token of all index
files, PLAID search p50/p95 at k=10 with 1 and 2 torch threads, top-10 overlap with
exhaustive MaxSim over the same compressed index at the defaults and wider settings (also
tie-aware: a result counts when its exact score reaches the exhaustive 10th score within a
relative 1e-5, since at 1M realistic passages up to 30 passages tie at the 10th score: the
realistic collection reuses each sentence about 14 times), and how often two-level
assignment found the nearest centroid. ``--keep`` keeps each index (with its
build figures in ``build.json``); ``--reuse`` measures a kept one again without building.

    python bench/realistic_collection.py             # once: encode and cache the sentences
    python bench/scale_colbert.py --sizes 10000 100000 1000000 --name realistic_colbert --keep
    python bench/scale_colbert.py --source resampled --sizes 10000 [--centroids 16384]
    python bench/scale_colbert.py --choices    # assignment cost per centroid count, one line

With ``--choices`` the centroids are random resampled tokens (k-means' starting point), and
each count is assigned flat (every centroid scored) and, past 16,384, in two levels.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time

import numpy as np
import torch

from common import WORK, peak_rss_mb, report
from late_engine import latency, overlap
from odqa.index.late import LateIndex, LateIndexWriter
from odqa.index.late.codec import HELDOUT_MAX, MAX_TRAINING_POINTS, TYPICAL_DOCLEN
from odqa.index.late.kmeans import FLAT_MAX, assign, centroid_groups
from odqa.index.settings import plaid_defaults
from scale_colbert_vectors import load

CHUNK_PASSAGES = 2000
SAMPLE_BLOCK = 1 << 18
WIDER = [(1, 0.5, 1024), (1, 0.5, 2048), (1, 0.5, 4096), (1, 0.5, 8192)]  # beside the defaults
TIE = 1e-5  # relative score difference within which two passages tie


class Resampler:
    """Seeded synthetic passages from the cached real token vectors."""

    def __init__(self, noise: float, seed: int) -> None:
        cached = load()
        self.tokens = cached["embeddings"]  # float16 (tokens, dim)
        self.doclens = cached["doclens"].numpy()
        self.noise, self.seed = noise, seed
        self.Q, self.qmask = cached["queries"], cached["qmask"]

    def passages(self, count: int, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` passages (tokens float32 (n, dim), doclens) of random stream ``stream``."""
        rng = np.random.default_rng([self.seed, stream])
        lens = rng.choice(self.doclens, size=count)
        return self.resampled(int(lens.sum()), rng), torch.from_numpy(lens)

    def resampled(self, count: int, rng: np.random.Generator) -> torch.Tensor:
        """``count`` float32 tokens, made in blocks (the training sample is stored float16:
        see :meth:`sample`)."""
        picks = torch.from_numpy(rng.integers(len(self.tokens), size=count))
        dim = self.tokens.shape[1]
        noise = torch.from_numpy(rng.standard_normal((count, dim), dtype=np.float32))
        vectors = self.tokens[picks].float() + noise * (self.noise / math.sqrt(dim))
        return torch.nn.functional.normalize(vectors, dim=1)

    def sample(self, count: int, stream: int) -> torch.Tensor:
        """``count`` float16 tokens, generated a block at a time to bound memory."""
        out = torch.empty(count, self.tokens.shape[1], dtype=torch.float16)
        rng = np.random.default_rng([self.seed, stream])
        for first in range(0, count, SAMPLE_BLOCK):
            out[first : first + SAMPLE_BLOCK] = self.resampled(
                min(SAMPLE_BLOCK, count - first), rng
            ).half()
        return out


def sample_tokens(passages: int, mean_doclen: float) -> int:
    """Tokens ColBERTv2 would sample for training (16 sqrt(120 n) passages), capped at what
    the codec clusters (k-means points plus the held-out part)."""
    sampled = min(passages, 1 + int(16 * math.sqrt(TYPICAL_DOCLEN * passages)))
    return min(int(sampled * mean_doclen), MAX_TRAINING_POINTS + HELDOUT_MAX)


def folder_bytes(folder) -> dict[str, int]:
    """Bytes of each index file (the bench's own build.json left out)."""
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != "build.json"]
    return {p.name: p.stat().st_size for p in files}


class ResampledSource:
    """The resampled source as :func:`one_size` reads any source."""

    def __init__(self, args: argparse.Namespace, passages: int) -> None:
        self.data = Resampler(args.noise, args.seed)
        self.passages_count, self.seed = passages, args.seed
        self.mean_doclen = float(self.data.doclens.mean())
        self.Q, self.qmask = self.data.Q, self.data.qmask

    def training_sample(self) -> torch.Tensor:
        return self.data.sample(sample_tokens(self.passages_count, self.mean_doclen), 1 << 30)

    def chunk(self, stream: int, first: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.passages(count, stream)

    def probe(self, count: int) -> torch.Tensor:
        return self.data.resampled(count, np.random.default_rng([self.seed, 1 << 31]))

    def ndcg10(self, pids: np.ndarray, scores: np.ndarray) -> float | None:
        return None


def make_source(args: argparse.Namespace, passages: int):
    if args.source == "realistic":
        from realistic_collection import RealisticSource

        return RealisticSource(passages, args.seed)
    return ResampledSource(args, passages)


def build_size(args: argparse.Namespace, data, folder) -> dict:
    """Build the index of one size; its figures, also kept in the folder as ``build.json``."""
    shutil.rmtree(folder, ignore_errors=True)
    expected_tokens = int(data.passages_count * data.mean_doclen)
    passages = data.passages_count
    times = {"generate_s": 0.0, "train_s": 0.0, "compress_s": 0.0, "finish_s": 0.0}

    started = time.perf_counter()
    sample = data.training_sample()
    times["generate_s"] += time.perf_counter() - started
    writer = LateIndexWriter(folder, nbits=args.nbits, seed=args.seed)
    started = time.perf_counter()
    writer.train(sample, num_tokens=expected_tokens, centroids=args.centroids)
    times["train_s"] = time.perf_counter() - started
    del sample
    for stream, first in enumerate(range(0, passages, CHUNK_PASSAGES)):
        started = time.perf_counter()
        embeddings, lens = data.chunk(stream, first, min(CHUNK_PASSAGES, passages - first))
        times["generate_s"] += time.perf_counter() - started
        started = time.perf_counter()
        writer.add(embeddings, lens)
        times["compress_s"] += time.perf_counter() - started
        if stream % 50 == 0:
            print(f"{passages}: {first} passages, {times}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    writer.finish()
    times["finish_s"] = time.perf_counter() - started
    times["build_s"] = times["train_s"] + times["compress_s"] + times["finish_s"]
    figures = {
        "build": {key: round(value, 1) for key, value in times.items()},
        "compress_tokens_per_s": round(writer.meta["num_tokens"] / max(times["compress_s"], 1e-9)),
        "build_peak_rss_mb": round(peak_rss_mb()),
        "sample_tokens": writer.meta["sample_tokens"],
    }
    (folder / "build.json").write_text(json.dumps(figures), encoding="utf-8")
    print(json.dumps(figures), file=sys.stderr, flush=True)
    return figures


def one_size(args: argparse.Namespace, passages: int) -> None:
    """Build (or, with ``--reuse``, take the kept index) and measure one size here."""
    torch.set_num_threads(args.build_threads)
    data = make_source(args, passages)
    folder = WORK / f"{args.name}_{passages}"
    if args.reuse and (folder / "build.json").exists():
        built = json.loads((folder / "build.json").read_text(encoding="utf-8"))
    else:
        built = build_size(args, data, folder)
    index = LateIndex(folder)
    codec = index.codec
    tokens = index.meta["num_tokens"]
    files = folder_bytes(folder)
    probe = codec.to_index_space(data.probe(20_000))
    nearest = assign(probe, codec._centroids32)
    found, _ = codec.nearest_centroids(probe)
    table = codec._centroids32
    score_gap = (probe * (table[nearest] - table[found])).sum(dim=1)

    Q, qmask = data.Q[: args.queries], data.qmask[: args.queries]
    search = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        search[f"threads{threads}_k10"] = latency(index, Q, qmask, 10)
    torch.set_num_threads(2)
    started = time.perf_counter()
    expected, tenth = index.exhaustive(Q[: args.overlap_queries], qmask[: args.overlap_queries], 10)
    tenth = tenth[:, -1:] - TIE * np.abs(tenth[:, -1:])
    exhaustive_s = time.perf_counter() - started
    found_pids, found_scores = index.search(
        Q[: args.overlap_queries], qmask[: args.overlap_queries], 10
    )
    relevance = {}
    if (ndcg := data.ndcg10(*index.search(data.Q, data.qmask, 10))) is not None:
        relevance = {"scifact_ndcg10_planted": round(ndcg, 4), "scifact_queries": len(data.Q)}
    torch.set_num_threads(1)
    wider = {}
    for ncells, threshold, ndocs in WIDER:
        plaid = {"ncells": ncells, "centroid_score_threshold": threshold, "ndocs": ndocs}
        rows = index.search(Q[: args.overlap_queries], qmask[: args.overlap_queries], 10, **plaid)
        wider[f"ncells{ncells}_ndocs{ndocs}"] = {
            "top10_overlap_vs_exhaustive": round(overlap(rows[0], expected), 4),
            "top10_overlap_tie_aware": round(float((rows[1] >= tenth).mean()), 4),
            "threads1": latency(index, Q, qmask, 10, **plaid),
        }
    report(
        f"{args.name}_{passages}",
        {
            "source": args.source,
            "passages": passages,
            "tokens": tokens,
            "dim": int(codec.dim),
            "nbits": args.nbits,
            "num_centroids": codec.num_centroids,
            "noise": args.noise if args.source == "resampled" else None,
            "build_threads": args.build_threads,
            **built,
            "bytes_per_token": {
                "all_files": round(sum(files.values()) / tokens, 2),
                **{name: round(size / tokens, 3) for name, size in sorted(files.items())},
            },
            "assignment": {
                "nearest_found": round(float((nearest == found).float().mean()), 4),
                "mean_score_gap": round(float(score_gap.mean()), 5),
            },
            "search_k10": search,
            "top10_overlap_vs_exhaustive": round(overlap(found_pids, expected), 4),
            "top10_overlap_tie_aware": round(float((found_scores >= tenth).mean()), 4),
            "plaid_defaults_k10": list(plaid_defaults(10, passages)),
            "overlap_queries": int(expected.shape[0]),
            **relevance,
            "wider_plaid_k10": wider,
            "exhaustive_s": round(exhaustive_s, 1),
            "peak_rss_mb": round(peak_rss_mb()),
        },
    )
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


def choices(args: argparse.Namespace) -> None:
    """Assignment speed (the cost of compression, and of each k-means iteration) and
    agreement for the centroid counts and assignment modes compared, side by side."""
    torch.set_num_threads(args.build_threads)
    data = Resampler(args.noise, args.seed)
    points = data.resampled(args.choice_tokens, np.random.default_rng([args.seed, 7]))
    rows = []
    for count in (1 << 14, 1 << 15, 1 << 16, 1 << 17):
        pool = data.resampled(count, np.random.default_rng([args.seed, count]))
        started = time.perf_counter()
        groups = centroid_groups(pool) if count > FLAT_MAX else None
        grouping_s = time.perf_counter() - started
        started = time.perf_counter()
        flat = assign(points, pool)
        flat_s = time.perf_counter() - started
        row = {"centroids": count, "flat_tokens_per_s": round(len(points) / flat_s)}
        if groups is not None:
            started = time.perf_counter()
            found = assign(points, pool, groups)
            grouped_s = time.perf_counter() - started
            gap = (points * (pool[flat] - pool[found])).sum(dim=1)
            row |= {
                "grouping_s": round(grouping_s, 2),
                "two_level_tokens_per_s": round(len(points) / grouped_s),
                "nearest_found": round(float((flat == found).float().mean()), 4),
                "mean_score_gap": round(float(gap.mean()), 5),
            }
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    report(
        f"{args.name}_choices",
        {"tokens": len(points), "threads": args.build_threads, "assignment": rows},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--centroids", type=int, help="override the engine's centroid count")
    parser.add_argument(
        "--source",
        choices=("realistic", "resampled"),
        default="realistic",
        help="recombined real sentences (bench/realistic_collection.py) or resampled tokens",
    )
    parser.add_argument("--noise", type=float, default=0.3, help="resampled: noise norm")
    parser.add_argument("--nbits", type=int, default=2)
    parser.add_argument("--queries", type=int, default=100, help="queries timed")
    parser.add_argument("--overlap-queries", type=int, default=50, help="queries compared")
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="scale_colbert", help="result file prefix")
    parser.add_argument("--keep", action="store_true", help="keep the index folders")
    parser.add_argument(
        "--reuse", action="store_true", help="measure a kept index (its build.json) again"
    )
    parser.add_argument("--choices", action="store_true", help="compare assignment choices")
    parser.add_argument("--choice-tokens", type=int, default=20_000)
    args = parser.parse_args()
    if args.choices:
        choices(args)
        return
    if args.one is not None:
        one_size(args, args.one)
        return
    for passages in args.sizes:
        command = [sys.executable, *sys.argv, "--one", str(passages)]
        done = subprocess.run(command, capture_output=False, check=False)
        if done.returncode:
            print(json.dumps({"passages": passages, "failed": done.returncode}))


if __name__ == "__main__":
    main()
