"""``make demo``'s reader: its training time, and ``eval-qa`` before and after, side by side.

1. Trains the demo reader as ``make demo`` does (``odqa train reader``'s defaults), timed;
   ``--reuse`` keeps one already there.
2. Reads the first ``--limit`` demo questions' top 1, 3 and 5 passages (hybrid, retrieved
   once), as ``eval-qa --top-k 1,3,5`` does, with the extractive reader of ``--before-src``
   (say, main before this change: every passage read again for each k, one padding for all
   windows) and with this tree's, alternating question by question: reading time,
   questions per second and EM/F1 of each.
3. The demo's own ``eval-qa`` (``--top-k 1,3 --limit 100``), and with ``--all`` all 359
   questions at top-k 1,3,5, with this tree's reader.

Run:  .venv/bin/python bench/demo_reader.py --before-src ../main/src [--limit 100] [--all]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

from common import ROOT, WORK, report
from common import run_odqa as odqa
from odqa.corpus import read_queries
from odqa.evaluate.qa import qa_metrics
from odqa.qa.pipeline import Pipeline
from odqa.read.extractive import ExtractiveReader
from odqa.retrieve import Searcher

SAMPLE = ROOT / "examples" / "squad-sample"
READER = WORK / "demo-reader"
INDEX = WORK / "demo-qa-index"


def reader_class_of(src: Path) -> type:
    """``ExtractiveReader`` as the file ``src/odqa/read/extractive.py`` defines it (its
    imports resolved against this tree)."""
    spec = importlib.util.spec_from_file_location(
        "extractive_before", src / "odqa" / "read" / "extractive.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.ExtractiveReader


def side_by_side(readers: dict, questions: list, evidence: list, ks: tuple[int, ...]) -> dict:
    """Each reader reads each question's top k for every k (one question at a time, the
    readers alternating, so that both see the same load): EM/F1 per k, seconds, questions/s."""
    seconds = dict.fromkeys(readers, 0.0)
    answers: dict = {name: {k: {} for k in ks} for name in readers}
    for question, passages in zip(questions, evidence, strict=True):
        for name, reader in readers.items():
            started = time.perf_counter()
            for k in ks:
                answers[name][k][question.id] = reader.read(question.text, passages[:k]).text
            seconds[name] += time.perf_counter() - started
    figures = {}
    for name in readers:
        scores = {}
        for k in ks:
            metrics = qa_metrics(answers[name][k], questions)
            scores[f"em@{k}"], scores[f"f1@{k}"] = round(metrics["em"], 2), round(metrics["f1"], 2)
        scores["reading_seconds"] = round(seconds[name], 1)
        scores["questions_per_second"] = round(len(questions) / seconds[name], 2)
        figures[name] = scores
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before-src", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--all", action="store_true", help="also all 359 questions, top-k 1,3,5")
    args = parser.parse_args()
    here = ROOT / "src"
    figures: dict = {"load_before": os.getloadavg()}
    if not INDEX.exists():
        odqa(
            here, "index", str(SAMPLE / "questions.json"), str(INDEX), "--retrievers", "bm25,dense"
        )
    reuse = ["--reuse"] if args.reuse else []
    output, seconds = odqa(
        here, "train", "reader", str(SAMPLE / "train.json"), "--out", str(READER),
        "--overwrite", *reuse,
    )  # fmt: skip
    record = json.loads((READER / "odqa_training.json").read_text(encoding="utf-8"))
    figures["training"] = {
        "command_seconds": round(seconds, 1),
        "reused": "kept" in output,
        **{key: record[key] for key in ("seconds", "steps", "examples", "windows", "loss")},
        "load": os.getloadavg()[0],
    }
    print(json.dumps(figures), flush=True)
    questions = read_queries(SAMPLE / "questions.json")
    questions = questions if args.all else questions[: max(args.limit, 100)]
    searcher = Searcher(INDEX)
    evidence = Pipeline(searcher, None).retrieve([q.text for q in questions], 5)
    before = reader_class_of(args.before_src.resolve())(READER)
    after = ExtractiveReader(READER)
    first = slice(0, args.limit)
    figures["eval_qa_top_1_3_5"] = side_by_side(
        {"before": before, "after": after}, questions[first], evidence[first], (1, 3, 5)
    )
    print(json.dumps(figures["eval_qa_top_1_3_5"]), flush=True)
    demo = slice(0, 100)
    figures["demo_top_1_3_first_100"] = side_by_side(
        {"after": after}, questions[demo], evidence[demo], (1, 3)
    )["after"]
    if args.all:
        figures["all_359_top_1_3_5"] = side_by_side(
            {"after": after}, questions, evidence, (1, 3, 5)
        )["after"]
    figures["load_after"] = os.getloadavg()
    report("demo_reader", figures)


if __name__ == "__main__":
    main()
