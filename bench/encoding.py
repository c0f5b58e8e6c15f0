"""Document encoding speed and quality at fp32, bf16 and dynamic int8, side by side.

Speed: tokens/second of dense (DenseEncoder) and ColBERT (ColBERTEncoder, embedded MiniLM,
plain layout) document encoding on the passages of the first ``--sample-docs`` SciFact
documents, cut the way an index cuts them. The variants are interleaved, ``--rounds`` rounds;
the median is reported with its ratio to fp32. Tokens are the real (unpadded) tokens.
Dense bf16 is also timed at batch sizes 16 and 256 beside the default 64.

Quality: SciFact test nDCG@10 of dense retrieval at each precision: every passage and query
encoded at that precision, exact inner product (what the default flat index computes), best
passage per document. ColBERT quality is not measured here: it would take another full
encode per precision and an exhaustive MaxSim (bench/late_scifact.py measures its nDCG).

int8 is ``torch.ao.quantization.quantize_dynamic`` over every ``torch.nn.Linear`` (qint8
weights, one scale per tensor; ``int8-channel``: one per output channel; the x86 engine), made
here only: it is not a precision of odqa.

Run: nice -n 5 .venv/bin/python bench/encoding.py [--sample-docs 64] [--rounds 3]
[--speed fp32,bf16,int8,int8-channel] [--quality fp32,bf16,int8] [--name encoding]
(an empty ``--speed ''`` or ``--quality ''`` skips that part; the first quality precision is the
reference the others are compared with).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.ao.quantization import (
    default_dynamic_qconfig,
    per_channel_dynamic_qconfig,
    quantize_dynamic,
)

from common import DATA, report
from odqa.corpus import read_documents, read_qrels, read_queries
from odqa.corpus.chunking import ChunkSpec, chunk_documents, indexable_text
from odqa.evaluate import evaluate_run
from odqa.evaluate.retrieval import judged_queries
from odqa.index import BuildOptions
from odqa.models import ColBERTEncoder, DenseEncoder
from odqa.models.batching import length_batches, token_lengths

SCIFACT = DATA / "beir-scifact"
PRECISIONS = ("fp32", "bf16", "int8", "int8-channel")
RUN_DEPTH = 100
WARM_UP = 8
"""Texts each variant encodes once before timing (first-call allocations, kernel choice)."""
BATCH_SIZES = (16, 256)
"""Dense bf16 batch sizes measured beside the default (BuildOptions.encode_batch, 64)."""


def quantized(module: torch.nn.Module, precision: str) -> torch.nn.Module:
    """A dynamic-int8 copy of ``module``: every Linear's weights in qint8, one scale per
    tensor (``int8``) or per output channel (``int8-channel``)."""
    qconfig = (
        per_channel_dynamic_qconfig if precision == "int8-channel" else default_dynamic_qconfig
    )
    return quantize_dynamic(copy.deepcopy(module), {torch.nn.Linear: qconfig}, dtype=torch.qint8)


def torch_precision(precision: str) -> str:
    """The odqa precision a variant runs under: int8 variants compute the rest in fp32."""
    return "fp32" if precision.startswith("int8") else precision


def dense_encoder(precision: str) -> DenseEncoder:
    encoder = DenseEncoder(device="cpu", precision=torch_precision(precision))
    if precision.startswith("int8"):
        encoder.model = quantized(encoder.model, precision)
    return encoder


def colbert_encoder(precision: str) -> ColBERTEncoder:
    encoder = ColBERTEncoder(device="cpu", precision=torch_precision(precision))
    if precision.startswith("int8"):
        encoder.model = quantized(encoder.model, precision)
        encoder.projection = quantized(encoder.projection, precision)
    return encoder


def passages_of(documents: list, tokenizer) -> tuple[list[str], list[str]]:
    """Texts and document ids of the passages an index cuts ``documents`` into."""
    passages = list(chunk_documents(documents, tokenizer, ChunkSpec()))
    return [indexable_text(p) for p in passages], [p.doc_id for p in passages]


def padding(documents: list, encoder: DenseEncoder, options: BuildOptions) -> dict:
    """Share of padding in the batches of the builder's windows: texts sorted by characters (as
    before) against by tokens (now)."""
    real = {"characters": 0, "tokens": 0}
    padded = dict(real)
    window, batch_size = options.batch_docs, options.encode_batch
    for start in range(0, len(documents), window):
        texts, _ = passages_of(documents[start : start + window], encoder.tokenizer)
        lengths = token_lengths(texts, encoder._token_ids)
        orders = {
            "characters": length_batches([len(text) for text in texts], batch_size),
            "tokens": length_batches(lengths, batch_size),
        }
        for key, batches in orders.items():
            real[key] += sum(int(lengths[rows].sum()) for rows in batches)
            padded[key] += sum(int(lengths[rows].max()) * len(rows) for rows in batches)
    return {key: round(1 - real[key] / padded[key], 4) for key in real}


def speed(texts: list[str], rounds: int, precisions: Sequence[str]) -> dict:
    """Median tokens/second of each (encoder, precision), interleaved round by round."""
    variants: dict[str, tuple[Callable[[list[str]], object], int]] = {}
    for precision in precisions:
        dense = dense_encoder(precision)
        tokens = int(token_lengths(texts, dense._token_ids).sum())
        variants[f"dense-{precision}"] = (lambda some, e=dense: e.encode_documents(some), tokens)
        if precision == "bf16":  # a token budget would only make short texts' batches larger
            for size in BATCH_SIZES:
                variants[f"dense-bf16-batch{size}"] = (
                    lambda some, e=dense, size=size: e.encode_documents(some, batch_size=size),
                    tokens,
                )
        colbert = colbert_encoder(precision)
        lengths = token_lengths(texts, lambda block, e=colbert: e._token_ids(block, query=False))
        variants[f"colbert-{precision}"] = (
            lambda some, e=colbert: e.encode_documents(some),
            int(lengths.sum()),
        )
    for encode, _ in variants.values():  # warm-up: first-call allocations and kernel choice
        encode(texts[:WARM_UP])
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (encode, tokens) in variants.items():
            started = time.perf_counter()
            encode(texts)
            rates[name].append(tokens / (time.perf_counter() - started))
            print(name, round(rates[name][-1]), file=sys.stderr, flush=True)
    results = {}
    for name, values in rates.items():
        kind = name.split("-")[0]  # the ratio is to the same encoder at fp32
        median = statistics.median(values)
        results[name] = {
            "tokens": variants[name][1],
            "tokens_per_second": round(median),
            "rounds": [round(value) for value in values],
            "vs_fp32": round(median / statistics.median(rates[f"{kind}-fp32"]), 2),
        }
    return results


def quality(
    texts: list[str], doc_ids: list[str], precisions: Sequence[str]
) -> Iterator[tuple[str, dict]]:
    """SciFact nDCG@10 (and recall) of exact dense retrieval at each precision, one at a time;
    the first precision is the reference of ``ndcg_vs_first`` and ``cosine_to_first``."""
    qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
    queries = judged_queries(read_queries(SCIFACT), qrels)
    owners = np.asarray(doc_ids)
    reference: tuple[np.ndarray, float] | None = None
    for precision in precisions:
        encoder = dense_encoder(precision)
        started = time.perf_counter()
        passages = encoder.encode_documents(texts)
        seconds = time.perf_counter() - started
        scores = encoder.encode_queries([q.text for q in queries]) @ passages.T
        run = {}
        for query, row in zip(queries, scores, strict=True):
            best: dict[str, float] = {}
            for column in np.argsort(-row):
                best.setdefault(str(owners[column]), float(row[column]))
                if len(best) == RUN_DEPTH:
                    break
            run[query.id] = best
        ndcg = evaluate_run(run, qrels)["ndcg@10"]
        reference = reference or (passages, ndcg)
        cosine = (passages * reference[0]).sum(axis=1)
        yield (
            precision,
            {
                "ndcg@10": round(ndcg, 5),
                "ndcg_vs_first": round(ndcg - reference[1], 5),
                "encode_seconds": round(seconds, 1),
                "tokens_per_second": round(
                    int(token_lengths(texts, encoder._token_ids).sum()) / seconds
                ),
                "cosine_to_first": {
                    "mean": round(float(cosine.mean()), 4),
                    "min": round(float(cosine.min()), 4),
                },
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample-docs", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--speed", default=",".join(PRECISIONS), help="precisions timed, or ''")
    parser.add_argument("--quality", default="fp32,bf16,int8", help="precisions evaluated, or ''")
    parser.add_argument("--docs", type=int, default=None, help="first documents only (a trial)")
    parser.add_argument("--name", default="encoding", help="the result file's name")
    args = parser.parse_args()
    documents = list(read_documents(SCIFACT))
    encoder = DenseEncoder(device="cpu")
    figures: dict = {
        "cpu_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
        "quantized_engine": torch.backends.quantized.engine,
        "padding_share": padding(documents, encoder, BuildOptions()),
    }
    if args.speed:
        sample, _ = passages_of(documents[: args.sample_docs], encoder.tokenizer)
        figures["sample"] = {"documents": args.sample_docs, "passages": len(sample)}
        figures["speed"] = speed(sample, args.rounds, args.speed.split(","))
    if not args.quality:
        report(args.name, figures)
        return
    texts, doc_ids = passages_of(documents[: args.docs], encoder.tokenizer)
    figures["quality"] = {"documents": len(documents[: args.docs]), "passages": len(texts)}
    for precision, result in quality(texts, doc_ids, args.quality.split(",")):
        figures["quality"][precision] = result
        report(args.name, figures)  # one line per precision: what is done survives a stop


if __name__ == "__main__":
    main()
