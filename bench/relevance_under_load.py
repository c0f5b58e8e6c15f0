"""Relevance under load: SciFact's corpus planted among N synthetic distractor documents.

Distractors (``dist-{i}``) are SciFact-like texts (words drawn from SciFact's vocabulary by
frequency, lengths drawn from SciFact's documents; ``synthetic_text.py``), after SciFact's
5,183 documents in corpus order. BM25 reads their text; dense reads precomputed vectors
(``--embeddings-from``): SciFact's real MiniLM vectors, then per distractor passage a vector
resampled from a real one plus noise (``scale_dense.write_planted_vectors``), so no
distractor is encoded. N = 0 is today's setting and must reproduce today's figures.

SciFact test (300 queries) nDCG@10 and Recall@100 per retriever, as N grows.

Run: .venv/bin/python bench/relevance_under_load.py --sizes 0,10000,100000,1000000
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

from common import DATA, RESULTS, WORK, peak_rss_mb, report
from odqa.corpus import ChunkSpec, Document, chunk_documents, read_qrels, read_queries
from odqa.evaluate.retrieval import evaluate_index
from odqa.index import build_index
from odqa.models import DenseEncoder
from odqa.retrieve import Searcher
from scale_dense import real_vectors, write_planted_vectors
from synthetic_text import SciFactLike, scifact_documents

SCIFACT = DATA / "beir-scifact"
CACHE = RESULTS / "cache"


def planted_corpus(size: int, documents: list[dict], model: SciFactLike) -> tuple:
    """The corpus file (SciFact then ``size`` distractors) and the distractor texts' path."""
    path = CACHE / f"planted-{size}.jsonl"
    if not path.exists():
        partial = path.with_suffix(".partial")
        with partial.open("w", encoding="utf-8") as handle:
            for doc in documents:
                record = {"id": doc["_id"], "title": doc["title"], "text": doc["text"]}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            for i, text in enumerate(model.texts(size, seed=7, lengths="scifact")):
                handle.write(f'{{"id": "dist-{i}", "text": "{text}"}}\n')
        partial.rename(path)
    return path


def distractor_passages(corpus, skip: int) -> list[tuple[str, int]]:
    """``(doc_id, chunk)`` of the distractors' passages, cut as a dense build cuts them."""
    tokenizer = DenseEncoder(precision="bf16").tokenizer

    def distractors():
        with corpus.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle):
                if number >= skip:
                    record = json.loads(line)
                    yield Document(record["id"], record["text"])

    return [(p.doc_id, p.chunk) for p in chunk_documents(distractors(), tokenizer, ChunkSpec())]


def evaluate(index, retriever: str) -> dict:
    queries = read_queries(SCIFACT)
    qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
    with Searcher(index) as searcher:
        metrics = evaluate_index(searcher, queries, qrels, retriever=retriever)
    return {name: round(metrics[name], 4) for name in ("ndcg@10", "recall@100")}


def one_size(size: int, documents: list[dict], model: SciFactLike, kinds: list[str]) -> dict:
    corpus = planted_corpus(size, documents, model)
    record: dict = {"distractors": size, "documents": len(documents) + size}
    if "bm25" in kinds:
        started = time.perf_counter()
        index = build_index(
            corpus,
            WORK / f"planted-bm25-{size}",
            retrievers=["bm25"],
            language="en",
            overwrite=True,
        )
        record["bm25"] = {
            "build_seconds": round(time.perf_counter() - started, 1),
            **evaluate(index, "bm25"),
        }
        shutil.rmtree(index)
    if "dense" in kinds:
        vectors = WORK / f"planted-vectors-{size}"
        write_planted_vectors(
            vectors,
            real_vectors(),
            distractor_passages(corpus, len(documents)),
            seed=11,
            overwrite=True,
        )
        started = time.perf_counter()
        index = build_index(
            corpus,
            WORK / f"planted-dense-{size}",
            retrievers=["dense"],
            embeddings_from=vectors,
            overwrite=True,
        )
        record["dense"] = {
            "build_seconds": round(time.perf_counter() - started, 1),
            **evaluate(index, "dense"),
        }
        shutil.rmtree(vectors, ignore_errors=True)
        shutil.rmtree(index)
    record["peak_rss_mb"] = round(peak_rss_mb())
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,10000,100000")
    parser.add_argument("--kinds", default="bm25,dense")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    documents = scifact_documents(DATA)
    model = SciFactLike(documents)
    results = []
    for size in (int(value) for value in args.sizes.split(",")):
        results.append(one_size(size, documents, model, args.kinds.split(",")))
        print(json.dumps(results[-1]), flush=True)
        report("relevance_under_load", {"sizes": results})


if __name__ == "__main__":
    main()
