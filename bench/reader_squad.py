"""Extractive reader on SQuAD v1.1 dev: trained on articles 0-37, evaluated on 38-47.

1. ``train_reader`` from the embedded all-MiniLM-L6-v2 on the questions of articles 0-37.
2. EM/F1 on articles 38-47 with each question's gold paragraph given (the reader alone).
3. Open QA on articles 38-47 against the whole 2,067-paragraph index (from
   ``bench/squad_open_retrieval.py``): EM/F1 at top-k 1, 2, 3, 5 with BM25, dense and hybrid,
   beside top-k retrieval accuracy.
4. ``ask`` latency per question: retrieval and reading timed apart, one question at a time.

Run:  .venv/bin/python bench/reader_squad.py --epochs 3 --precision bf16 [--limit N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from common import DATA, WORK, peak_rss_mb, report
from odqa.corpus import read_queries
from odqa.evaluate.answering import evaluate_qa, evaluate_reader
from odqa.qa.pipeline import Pipeline
from odqa.read.extractive import ExtractiveReader
from odqa.retrieve import Searcher
from odqa.train.reader import ReaderTrainConfig, train_reader

SQUAD = DATA / "squad-v1.1" / "dev-v1.1.json"
INDEX = WORK / "squad-dev"  # BM25 + dense over all 2,067 paragraphs
TRAIN_ARTICLES = range(0, 38)
TEST_ARTICLES = range(38, 48)
TOP_KS = (1, 2, 3, 5)
LATENCY_QUESTIONS = 100


def held_out_file() -> tuple[object, list]:
    """A SQuAD file of articles 38-47 only, and their questions (ids as in the full file)."""
    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    target = WORK / "squad-dev-38-47.json"
    subset = {"version": data["version"], "data": data["data"][TEST_ARTICLES.start :]}
    target.write_text(json.dumps(subset), encoding="utf-8")
    wanted = {
        qa["id"] for article in subset["data"] for p in article["paragraphs"] for qa in p["qas"]
    }
    questions = [query for query in read_queries(SQUAD) if query.id in wanted]
    return target, questions


def latency(searcher: Searcher, reader: ExtractiveReader, questions: list) -> dict:
    """p50/p95 milliseconds of retrieval and of reading, per question, top-3, hybrid."""
    pipeline = Pipeline(searcher, reader)
    retrieval, reading = [], []
    for question in questions[:LATENCY_QUESTIONS]:
        started = time.perf_counter()
        evidence = pipeline.retrieve([question.text], 3)[0]
        middle = time.perf_counter()
        reader.read(question.text, evidence)
        retrieval.append(1000 * (middle - started))
        reading.append(1000 * (time.perf_counter() - middle))

    def summary(values: list[float]) -> dict:
        ordered = sorted(values)
        return {
            "p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        }

    return {"retrieval": summary(retrieval), "reading_top3": summary(reading)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--limit", type=int, help="open QA on the first N held-out questions")
    parser.add_argument("--reuse", action="store_true", help="skip training if the model exists")
    args = parser.parse_args()

    model = WORK / "reader-squad-0-37"
    held_out, questions = held_out_file()
    figures: dict = {"held_out_questions": len(questions)}
    if not (args.reuse and model.exists()):
        config = ReaderTrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            precision=args.precision,
        )
        summary = train_reader(
            SQUAD, model, config, articles=TRAIN_ARTICLES, overwrite=True, show_progress=True
        )
        figures["training"] = summary
    reader = ExtractiveReader(model, precision=args.precision)
    figures["gold_paragraph"] = evaluate_reader(reader, held_out, show_progress=True)
    open_questions = questions[: args.limit] if args.limit else questions
    figures["open_qa_questions"] = len(open_questions)
    searcher = Searcher(INDEX)
    figures["open_qa"] = {
        retriever: evaluate_qa(
            searcher, reader, open_questions, ks=TOP_KS, retriever=retriever,
            show_progress=True,
        )
        for retriever in ("bm25", "dense", "hybrid")
    }  # fmt: skip
    figures["ask_latency"] = latency(searcher, reader, questions)
    figures["peak_rss_mb"] = round(peak_rss_mb())
    report("reader_squad", figures)


if __name__ == "__main__":
    main()
