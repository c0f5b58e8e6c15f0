"""``make demo``'s reader: its training time, and ``eval-qa`` before and after, side by side.

1. Trains the demo reader with the Makefile's ``DEMO_TRAINING`` options, timed; ``--reuse``
   keeps one already there.
2. Runs ``odqa eval-qa`` on the demo's QA index with that reader, once with the code in
   ``--before-src`` (say, a checkout of main before this change: every passage read again
   for each k, one padding for all windows) and once with this tree's, alternately, on the
   same questions (``--limit``, top-k 1,3,5): questions per second and EM/F1 of each.
3. The demo's own ``eval-qa`` (``--top-k 1,3 --limit 100``) and all 359 questions at top-k
   1,3,5, with this tree's code.

Run:  .venv/bin/python bench/demo_reader.py --before-src ../main/src [--limit 100] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, WORK, report

SAMPLE = ROOT / "examples" / "squad-sample"
READER = WORK / "demo-reader"
INDEX = WORK / "demo-qa-index"


def demo_training() -> list[str]:
    """The training options of the Makefile's ``DEMO_TRAINING`` (what ``make demo`` runs)."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("DEMO_TRAINING :="))
    return line.split(":=", 1)[1].split()


def odqa(src: Path, *args: str) -> tuple[str, float]:
    """Run ``odqa ARGS`` on the code in ``src``; its stdout and wall seconds."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "odqa.cli", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"odqa {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout, time.perf_counter() - started


def eval_qa(src: Path, *options: str) -> dict:
    """``odqa eval-qa --json`` on the demo index: its metrics, wall seconds, questions/s."""
    args = ["eval-qa", str(INDEX), "--questions", str(SAMPLE / "questions.json")]
    output, seconds = odqa(src, *args, "--reader-model", str(READER), *options, "--json")
    metrics = json.loads(output)
    rounded = {key: round(value, 2) for key, value in metrics.items() if "@" in key}
    return {
        **rounded,
        "questions": metrics["questions"],
        "seconds": round(seconds, 1),
        "questions_per_second": round(metrics["questions"] / seconds, 2),
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before-src", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    here = ROOT / "src"
    figures: dict = {"load_before": os.getloadavg()}
    if not INDEX.exists():
        odqa(
            here, "index", str(SAMPLE / "questions.json"), str(INDEX), "--retrievers", "bm25,dense"
        )
    reuse = ["--reuse"] if args.reuse else []
    output, seconds = odqa(
        here, "train", "reader", str(SAMPLE / "train.json"), "--out", str(READER), *demo_training(),
        "--overwrite", *reuse,
    )  # fmt: skip
    figures["training"] = {"seconds": round(seconds, 1), "output": output.strip().splitlines()[-2:]}
    figures["training"]["load"] = os.getloadavg()[0]
    same = ("--top-k", "1,3,5", "--limit", str(args.limit))
    figures["before"] = eval_qa(args.before_src.resolve(), *same)
    figures["after"] = eval_qa(here, *same)
    figures["speed-up"] = round(
        figures["after"]["questions_per_second"] / figures["before"]["questions_per_second"], 2
    )
    figures["demo"] = eval_qa(here, "--top-k", "1,3", "--limit", "100")
    figures["all_questions"] = eval_qa(here, "--top-k", "1,3,5")
    figures["load_after"] = os.getloadavg()
    report("demo_reader", figures)


if __name__ == "__main__":
    main()
