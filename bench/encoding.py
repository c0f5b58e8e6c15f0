"""Document encoding speed and quality at fp32, bf16 and dynamic int8, side by side.

Speed: tokens/second of dense (DenseEncoder) and ColBERT (ColBERTEncoder, embedded MiniLM,
plain layout) document encoding on the passages of the first ``--sample-docs`` SciFact
documents, cut the way an index cuts them. The variants are interleaved, ``--rounds`` rounds;
the median is reported with its ratio to fp32. Tokens are the real (unpadded) tokens.
Dense bf16 is also timed at batch sizes 16 and 256 beside the default 64.

Quality: SciFact test nDCG@10 of dense retrieval at each precision: every passage and query
encoded at that precision, exact inner product (what the default flat index computes), best
passage per document. ColBERT quality is not measured: the embedded model's ColBERT
projection is untrained, so its nDCG says nothing about precision.

int8 is ``torch.ao.quantization.quantize_dynamic`` over every ``torch.nn.Linear`` (qint8
weights, one scale per tensor; ``int8-channel``: one per output channel; the x86 engine), made
here only: it is not a precision of odqa.

Run: nice -n 5 .venv/bin/python bench/encoding.py [--sample-docs 128] [--rounds 3] [--no-quality]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

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


def speed(texts: list[str], rounds: int) -> dict:
    """Median tokens/second of each (encoder, precision), interleaved round by round."""
    variants: dict[str, tuple[Callable[[], object], int]] = {}
    dense_encoders: dict[str, DenseEncoder] = {}
    for precision in PRECISIONS:
        dense = dense_encoders[precision] = dense_encoder(precision)
        tokens = int(token_lengths(texts, dense._token_ids).sum())
        variants[f"dense-{precision}"] = (lambda e=dense: e.encode_documents(texts), tokens)
        colbert = colbert_encoder(precision)
        lengths = token_lengths(texts, lambda block, e=colbert: e._token_ids(block, query=False))
        variants[f"colbert-{precision}"] = (
            lambda e=colbert: e.encode_documents(texts),
            int(lengths.sum()),
        )
    for size in BATCH_SIZES:  # a token budget would only make the batches of short texts larger
        variants[f"dense-bf16-batch{size}"] = (
            lambda e=dense_encoders["bf16"], size=size: e.encode_documents(texts, batch_size=size),
            variants["dense-bf16"][1],
        )
    for encode, _ in variants.values():  # warm-up: first-call allocations and kernel choice
        encode()
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (encode, tokens) in variants.items():
            started = time.perf_counter()
            encode()
            rates[name].append(tokens / (time.perf_counter() - started))
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


def quality(texts: list[str], doc_ids: list[str]) -> dict:
    """SciFact nDCG@10 (and recall) of exact dense retrieval at each precision."""
    qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
    queries = judged_queries(read_queries(SCIFACT), qrels)
    owners = np.asarray(doc_ids)
    results: dict = {}
    reference = None
    for precision in PRECISIONS:
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
        metrics = evaluate_run(run, qrels)
        if reference is None:
            reference = passages
        cosine = (passages * reference).sum(axis=1)
        results[precision] = {
            "ndcg@10": round(metrics["ndcg@10"], 4),
            "recall@100": round(metrics["recall@100"], 4),
            "encode_seconds": round(seconds, 1),
            "cosine_to_fp32": {
                "mean": round(float(cosine.mean()), 4),
                "min": round(float(cosine.min()), 4),
            },
        }
    for precision in PRECISIONS:
        results[precision]["ndcg_vs_fp32"] = round(
            results[precision]["ndcg@10"] - results["fp32"]["ndcg@10"], 4
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample-docs", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-quality", action="store_true")
    args = parser.parse_args()
    documents = list(read_documents(SCIFACT))
    encoder = DenseEncoder(device="cpu")
    tokenizer = encoder.tokenizer
    sample, _ = passages_of(documents[: args.sample_docs], tokenizer)
    figures: dict = {
        "cpu_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
        "quantized_engine": torch.backends.quantized.engine,
        "padding_share": padding(documents, encoder, BuildOptions()),
        "sample": {"documents": args.sample_docs, "passages": len(sample)},
        "speed": speed(sample, args.rounds),
    }
    if not args.no_quality:
        texts, doc_ids = passages_of(documents, tokenizer)
        figures["quality"] = {"passages": len(texts), **quality(texts, doc_ids)}
    report("encoding", figures)


if __name__ == "__main__":
    main()
