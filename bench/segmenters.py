"""Scripts written without spaces: character bigrams (odqa's generic analysis) against a word
segmenter, for BM25 on native question-answering sets.

Chinese: CMRC 2018 (simplified) and DRCD (traditional) with jieba; Japanese: JaQuAD with
SudachiPy (its core dictionary, mode C); Thai: iapp-wiki-qa with PyThaiNLP's default
``newmm``. The paragraphs of each set (the first ``--paragraphs``) are the documents and all
their questions the queries; every variant is indexed by bm25s (its public API; Lucene BM25,
k1 0.9, b 0.4, as odqa's default) from the variant's tokens, and scored with odqa's
``evaluate_run`` (nDCG@10, accuracy@1/5/20). Segmenter tokens are NFKC-casefolded like the
generic analysis'; the segmenters drop nothing but whitespace and punctuation-only tokens.
Also: both together (words and bigrams). Data: bench/results/cache/multilingual/ (see the
SOURCE.md of each language there).

Run: PYTHONPATH=src .venv/bin/python bench/segmenters.py [--paragraphs 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

import bm25s
import numpy as np

from common import RESULTS, report
from odqa.evaluate.ir import evaluate_run
from odqa.index.analysis import GenericAnalyzer

MULTILINGUAL = RESULTS / "cache" / "multilingual"
SETS = {
    "zh-cmrc2018": ("zh/cmrc2018_dev.json", "jieba"),
    "zh-drcd": ("zh/drcd_dev.json", "jieba"),
    "ja-jaquad": ("ja/jaquad_dev.json", "sudachi"),
    "th-iapp": ("th/iapp_wiki_qa_test.json", "pythainlp"),
}
AT = (1, 5, 20)


def segmenter(name: str) -> Callable[[str], list[str]]:
    """Words of a text by the named segmenter."""
    if name == "jieba":
        import jieba

        jieba.setLogLevel(60)
        return lambda text: list(jieba.cut(text))
    if name == "sudachi":
        from sudachipy import Dictionary, SplitMode

        tokenizer = Dictionary().create()
        return lambda text: [m.surface() for m in tokenizer.tokenize(text, SplitMode.C)]
    from pythainlp.tokenize import word_tokenize

    return lambda text: word_tokenize(text, engine="newmm")


def words(cut: Callable[[str], list[str]], text: str) -> list[str]:
    """Segmenter words, NFKC-casefolded, without whitespace or punctuation-only tokens."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return [w for w in (w.strip() for w in cut(folded)) if w and any(c.isalnum() for c in w)]


def load(path: Path, paragraphs: int) -> tuple[list[str], list[str], list[str], dict]:
    """Documents (ids, texts) and queries (ids, texts) with qrels of the first paragraphs."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    docs, queries, qrels = [], [], {}
    for article in data:
        for paragraph in article["paragraphs"]:
            if len(docs) == paragraphs:
                break
            doc_id = f"p{len(docs)}"
            docs.append(f"{article.get('title', '')} {paragraph['context']}")
            for qa in paragraph["qas"]:
                queries.append((qa["id"], qa["question"]))
                qrels[qa["id"]] = {doc_id: 1}
    return docs, [q for _, q in queries], [i for i, _ in queries], qrels


def scores(
    doc_tokens: list[list[str]], query_tokens: list[list[str]], ids: list[str], qrels: dict
) -> dict:
    """nDCG@10 and accuracy@k of bm25s over the given tokens."""
    vocab: dict[str, int] = {}
    encode = lambda tokens: [vocab.setdefault(t, len(vocab)) for t in tokens]  # noqa: E731
    corpus = [encode(tokens) for tokens in doc_tokens]
    retriever = bm25s.BM25(method="lucene", k1=0.9, b=0.4)
    retriever.index(bm25s.tokenization.Tokenized(ids=corpus, vocab=vocab), show_progress=False)
    queries = [[vocab[t] for t in tokens if t in vocab] for tokens in query_tokens]
    run = {}
    for query_id, tokens in zip(ids, queries, strict=True):
        if not tokens:
            run[query_id] = {}
            continue
        found, values = retriever.retrieve(
            bm25s.tokenization.Tokenized(ids=[tokens], vocab=vocab), k=min(100, len(corpus)),
            show_progress=False,
        )  # fmt: skip
        run[query_id] = {f"p{d}": float(s) for d, s in zip(found[0], values[0], strict=True)}
    metrics = evaluate_run(run, qrels, accuracy_at=AT)
    return {
        key: round(float(metrics[key]), 4) for key in ["ndcg@10", *(f"accuracy@{k}" for k in AT)]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paragraphs", type=int, default=1000)
    args = parser.parse_args()
    figures: dict = {"load_at_start": os.getloadavg(), "sets": {}}
    bigrams = GenericAnalyzer()
    for name, (file, segmenter_name) in SETS.items():
        docs, questions, ids, qrels = load(MULTILINGUAL / file, args.paragraphs)
        cut = segmenter(segmenter_name)
        started = time.perf_counter()
        doc_words = [words(cut, text) for text in docs]
        query_words = [words(cut, text) for text in questions]
        seconds = round(time.perf_counter() - started, 1)
        doc_bigrams, query_bigrams = bigrams.tokenize(docs), bigrams.tokenize(questions)
        row = {
            "documents": len(docs), "queries": len(questions), "segmenter": segmenter_name,
            "segmenter_seconds": seconds,
            "bigrams": scores(doc_bigrams, query_bigrams, ids, qrels),
            "words": scores(doc_words, query_words, ids, qrels),
            "words+bigrams": scores(
                [a + b for a, b in zip(doc_words, doc_bigrams, strict=True)],
                [a + b for a, b in zip(query_words, query_bigrams, strict=True)], ids, qrels,
            ),
            "mean_tokens": {
                "bigrams": float(np.mean([len(t) for t in doc_bigrams])),
                "words": float(np.mean([len(t) for t in doc_words])),
            },
        }  # fmt: skip
        figures["sets"][name] = row
        print(name, json.dumps(row), flush=True)
    figures["load_at_end"] = os.getloadavg()
    report("segmenters", figures)


if __name__ == "__main__":
    main()
