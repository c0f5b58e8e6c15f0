"""How the demo's reader is trained: epochs, batch size and learning rate, side by side.

Each setting trains a reader on ``examples/squad-sample/train.json`` (2,047 questions) with
``odqa train reader`` and scores it with ``odqa eval-qa`` on all 359 questions of
``examples/squad-sample/questions.json`` (hybrid, top-k 1 and 3) over the demo's index (built
here when missing): EM/F1 and the training command's seconds. The settings run one after
the other (their seconds are comparable only on a quiet machine); the record is rewritten
after each, so a cut run keeps what it measured.

Run:  .venv/bin/python bench/reader_settings.py [--only defaults,former] [--name NAME]
"""

from __future__ import annotations

import argparse
import os
import re

from common import ROOT, WORK, report, run_odqa

SAMPLE = ROOT / "examples" / "squad-sample"
INDEX = WORK / "demo-qa-index"
SETTINGS = {
    "defaults": [],  # one epoch, batch 8, lr 2e-4
    "defaults-seed-1": ["--seed", "1"],
    "former": ["--epochs", "2", "--batch-size", "32", "--learning-rate", "1e-4"],
    "former-seed-1": [
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--learning-rate",
        "1e-4",
        "--seed",
        "1",
    ],
    "one-epoch-of-32": ["--batch-size", "32", "--learning-rate", "1e-4"],
    "half-the-questions": ["--max-questions", "1024"],
}


def odqa(*args: str) -> tuple[str, float]:
    """``odqa ARGS`` on this tree: its stdout and wall seconds."""
    return run_odqa(ROOT / "src", *args)


def scores(table: str) -> dict:
    """EM/F1 by k from ``eval-qa``'s printed table."""
    found = {}
    for k, em, f1 in re.findall(r"^\s+(\d+)\s+([\d.]+)\s+([\d.]+)", table, re.MULTILINE):
        found[f"em@{k}"], found[f"f1@{k}"] = float(em), float(f1)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma list of settings (default: all)")
    parser.add_argument("--name", default="reader_settings", help="bench/results/NAME.json")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(SETTINGS)
    if not INDEX.exists():
        odqa("index", str(SAMPLE / "questions.json"), str(INDEX), "--retrievers", "bm25,dense")
    figures: dict = {"load_before": os.getloadavg(), "settings": {}}
    for name in chosen:
        out = WORK / "reader-settings" / name
        _, seconds = odqa(
            "train", "reader", str(SAMPLE / "train.json"), "--out", str(out), "--overwrite",
            *SETTINGS[name],
        )  # fmt: skip
        table, _ = odqa(
            "eval-qa", str(INDEX), "--questions", str(SAMPLE / "questions.json"),
            "--reader-model", str(out), "--top-k", "1,3",
        )  # fmt: skip
        figures["settings"][name] = {
            "options": SETTINGS[name],
            "train_seconds": round(seconds, 1),
            **scores(table),
        }
        figures["load_after"] = os.getloadavg()
        left = chosen[chosen.index(name) + 1 :]
        report(args.name, {**figures, **({"not_yet_run": left} if left else {})})


if __name__ == "__main__":
    main()
