"""The untrained sentence reader on SQuAD-open (articles 38-47), beside a fine-tuned reader.

Each held-out question (SQuAD v1.1 dev, articles 38-47; ``--every N`` keeps every Nth) is
retrieved once (hybrid, top 5) against all 2,067 dev paragraphs (the index of
``bench/squad_open_retrieval.py``, built here when missing), and its top 1, 2, 3 and 5
passages are read by:

- the sentence reader, MiniLM cosine and MaxSim, with a retrieval weight of 0 and of
  ``--weight``: how often the returned sentence holds a gold answer (whole normalised tokens,
  as retrieval accuracy counts), and its EM/F1;
- fine-tuned extractive readers (``--reader-model``, repeatable; by default the reader
  ``make demo`` trains, ``build/demo-reader``, and one trained with ``odqa train reader``'s
  defaults on articles 0-37, ``build/bench/reader-squad-0-37-defaults`` (see the README),
  those that exist): EM/F1, and how often their answer holds a gold answer too.

Run:  .venv/bin/python bench/sentence_reader_squad.py [--every 4] [--reader-model DIR ...]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from common import DATA, ROOT, WORK, report
from odqa.corpus import read_queries
from odqa.evaluate.qa import answer_in_text, qa_metrics
from odqa.index import BuildOptions, build_index
from odqa.qa.pipeline import Pipeline
from odqa.read import ExtractiveReader, SentenceReader
from odqa.retrieve import Searcher

SQUAD = DATA / "squad-v1.1" / "dev-v1.1.json"
INDEX = WORK / "squad-dev"
TEST_ARTICLES = range(38, 48)
TOP_KS = (1, 2, 3, 5)
DEFAULT_READERS = (ROOT / "build" / "demo-reader", WORK / "reader-squad-0-37-defaults")


def held_out(every: int) -> list:
    """Every ``every``-th question of articles 38-47 (ids and answers as in the dev file)."""
    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    wanted = {
        qa["id"]
        for article in data[TEST_ARTICLES.start : TEST_ARTICLES.stop]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }
    return [query for query in read_queries(SQUAD) if query.id in wanted][::every]


def score(reader, questions: list, evidence: list) -> dict:
    """EM/F1 at each k, and the share of answers holding a gold answer, in percent."""
    started = time.perf_counter()
    answers: dict = {k: {} for k in TOP_KS}
    for question, passages in zip(questions, evidence, strict=True):
        for k in TOP_KS:  # one question at a time: a reader reads each passage once
            answers[k][question.id] = reader.read(question.text, passages[:k]).text
    figures: dict = {}
    for k in TOP_KS:
        metrics = qa_metrics(answers[k], questions)
        held = sum(answer_in_text(q.answers, answers[k][q.id]) for q in questions)
        figures[f"holds_answer@{k}"] = round(100.0 * held / len(questions), 2)
        figures[f"em@{k}"] = round(metrics["em"], 2)
        figures[f"f1@{k}"] = round(metrics["f1"], 2)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--weight", type=float, default=0.05)
    parser.add_argument("--reader-model", type=Path, action="append")
    args = parser.parse_args()
    if not INDEX.exists():
        build_index(SQUAD, INDEX, BuildOptions(show_progress=True))
    questions = held_out(args.every)
    searcher = Searcher(INDEX)
    evidence = Pipeline(searcher, None).retrieve([q.text for q in questions], max(TOP_KS))
    pairs = list(zip(questions, evidence, strict=True))
    found = {
        f"retrieval_accuracy@{k}": round(
            100.0
            * sum(any(answer_in_text(q.answers, e.text) for e in top[:k]) for q, top in pairs)
            / len(questions),
            2,
        )
        for k in TOP_KS
    }
    figures: dict = {"questions": len(questions), "every": args.every, "retriever": "hybrid"}
    figures["load_before"] = os.getloadavg()
    figures["retrieval"] = found
    readers: dict = {}
    for method in ("cosine", "maxsim"):
        reader = SentenceReader(method=method)
        for weight in (0.0, args.weight):
            reader.retrieval_weight = weight
            readers[f"sentence-{method}-w{weight:g}"] = score(reader, questions, evidence)
            print(
                json.dumps({method: weight, **readers[f"sentence-{method}-w{weight:g}"]}),
                flush=True,
            )
    models = args.reader_model or [path for path in DEFAULT_READERS if path.exists()]
    for number, model in enumerate(models, 1):
        name = f"extractive-{number}-{model.name}"
        readers[name] = {**score(ExtractiveReader(model), questions, evidence), "model": str(model)}
        print(json.dumps({name: readers[name]}), flush=True)
    figures["readers"] = readers
    figures["load_after"] = os.getloadavg()
    report("sentence_reader_squad", figures)


if __name__ == "__main__":
    main()
