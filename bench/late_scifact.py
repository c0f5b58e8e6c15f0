"""ColBERT late interaction on BEIR SciFact test with the embedded MiniLM (zero-shot).

1. ``build_index(retrievers=["colbert"])`` end to end (encoding included), then nDCG@10 of
   PLAID search through odqa's Searcher.
2. The reference: the same passages encoded again, kept uncompressed (float16), searched by
   exact MaxSim; nDCG@10 and top-10 overlap of PLAID with it.
3. Indexing without encoding: the codec, compression and inverted file built again from those
   embeddings, timed alone.
4. Size per token against float16; per-query latency p50/p95 with 1 and 2 threads, k=10/100.
5. At k=10, PLAID's knobs swept: overlap with both references and 1-thread p50 per setting.

Run: .venv/bin/python bench/late_scifact.py   (about 20 minutes on 2 cores)
     .venv/bin/python bench/late_scifact.py --model build/bench/colbert-scifact-trained \
         --index scifact-colbert-trained --reuse --name late_scifact_trained [--nbits 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from common import DATA, WORK, peak_rss_mb, report
from late_engine import build, latency, overlap
from odqa.corpus import indexable_text, read_qrels, read_queries
from odqa.evaluate import evaluate_run
from odqa.index import build_index
from odqa.index.late import ExactStore, LateIndex
from odqa.retrieve import Searcher

SCIFACT = DATA / "beir-scifact"
SWEEP = [(1, 0.5, 256), (2, 0.5, 256), (1, 0.5, 512), (2, 0.45, 512), (2, 0.45, 1024)]


def document_run(rows: np.ndarray, scores: np.ndarray, doc_ids: list[str], passages) -> dict:
    """Passage rows -> best score per document, as a run for one query."""
    run: dict[str, float] = {}
    for row, score in zip(rows.tolist(), scores.tolist(), strict=True):
        if row >= 0:
            doc = doc_ids[int(passages[row, 0])]
            run[doc] = max(run.get(doc, float("-inf")), score)
    return run


def folder_bytes(folder) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="ColBERT checkpoint folder (default: embedded MiniLM)")
    parser.add_argument("--index", default="scifact-colbert", help="index folder under build/bench")
    parser.add_argument("--reuse", action="store_true", help="use the index if it exists")
    parser.add_argument("--name", default="late_scifact", help="result file name")
    parser.add_argument("--nbits", type=int, default=2, help="residual bits per dimension")
    args = parser.parse_args()
    target = WORK / args.index
    figures: dict = {"model": args.model or "embedded", "nbits": args.nbits}
    if not (args.reuse and target.exists()):
        started = time.perf_counter()
        build_index(
            SCIFACT,
            target,
            retrievers=["colbert"],
            colbert_model=args.model,
            nbits=args.nbits,
            overwrite=True,
            show_progress=True,
        )
        figures["build_with_encoding_s"] = round(time.perf_counter() - started, 1)
        figures["build_peak_rss_mb"] = round(peak_rss_mb())  # nothing else has run yet
    queries = [q for q in read_queries(SCIFACT)]
    qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
    queries = [q for q in queries if q.id in qrels]
    searcher = Searcher(target)
    late = searcher.retriever("colbert").engine
    collection = searcher.collection

    texts = [indexable_text(collection.passage(row)) for row in range(collection.num_passages)]
    started = time.perf_counter()
    embeddings, doclens = late.encoder.encode_documents(texts, show_progress=True)
    figures["encode_s"] = round(time.perf_counter() - started, 1)
    figures["tokens"] = int(doclens.sum())
    Q, qmask = late.encoder.encode_queries([q.text for q in queries])

    exact = ExactStore(embeddings.half(), doclens)
    del embeddings
    ref_rows, ref_scores = exact.search(Q, qmask, 100)
    plaid_rows, plaid_scores = late.index.search(Q, qmask, 100)
    ids, passages = collection.doc_ids, collection.passages

    def ndcg(rows, scores) -> float:
        run = {
            q.id: document_run(r, s, ids, passages)
            for q, r, s in zip(queries, rows, scores, strict=True)
        }
        return round(evaluate_run(run, qrels)["ndcg@10"], 4)

    k10_rows, _ = late.index.search(Q, qmask, 10)
    decompressed_rows, _ = late.index.exhaustive(Q, qmask, 10)
    figures["quality"] = {
        "ndcg@10_exhaustive_uncompressed": ndcg(ref_rows, ref_scores),
        "ndcg@10_plaid_k100": ndcg(plaid_rows, plaid_scores),
        "top10_overlap_plaid_k10_vs_exhaustive": round(overlap(k10_rows, ref_rows[:, :10]), 4),
        "top10_overlap_exhaustive_decompressed_vs_exhaustive": round(
            overlap(decompressed_rows, ref_rows[:, :10]), 4
        ),
        "top10_overlap_plaid_k10_vs_exhaustive_decompressed": round(
            overlap(k10_rows, decompressed_rows), 4
        ),
        "top10_overlap_plaid_k100_vs_exhaustive": round(
            overlap(plaid_rows[:, :10], ref_rows[:, :10]), 4
        ),
    }

    rebuilt = WORK / "scifact-colbert-rebuilt"
    figures["indexing_without_encoding"] = build(
        rebuilt, exact.embeddings.float(), doclens, args.nbits
    )
    tokens = int(doclens.sum())
    index_folder = target / "colbert"
    ivf = sum((index_folder / name).stat().st_size for name in ("ivf.npy", "ivf_lengths.npy"))
    figures["size"] = {
        "bytes_per_token_all_files": round(folder_bytes(index_folder) / tokens, 2),
        "bytes_per_token_without_ivf": round((folder_bytes(index_folder) - ivf) / tokens, 2),
        "ivf_bytes": ivf,
        "float16_bytes_per_token": 2 * int(Q.shape[-1]),
    }
    index = LateIndex(index_folder)
    timings = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for k in (10, 100):
            timings[f"threads{threads}_k{k}"] = latency(index, Q, qmask, k)
    figures["latency_per_query"] = timings
    torch.set_num_threads(1)
    sweep = []
    for ncells, threshold, ndocs in SWEEP:
        plaid = {"ncells": ncells, "centroid_score_threshold": threshold, "ndocs": ndocs}
        rows, _ = index.search(Q, qmask, 10, **plaid)
        sweep.append(
            {
                **plaid,
                "overlap_vs_exhaustive": round(overlap(rows, ref_rows[:, :10]), 4),
                "overlap_vs_decompressed": round(overlap(rows, decompressed_rows), 4),
                "threads1": latency(index, Q, qmask, 10, **plaid),
            }
        )
    figures["k10_settings"] = sweep
    figures["peak_rss_mb"] = round(peak_rss_mb())
    report(args.name, figures)


if __name__ == "__main__":
    main()
