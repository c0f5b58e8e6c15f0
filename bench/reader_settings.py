"""How the demo's reader is trained: epochs, batch size and learning rate, side by side.

Each setting trains a reader on ``examples/squad-sample/train.json`` (2,047 questions) with
``odqa train reader`` and scores it with ``odqa eval-qa`` on all 359 questions of
``examples/squad-sample/questions.json`` (hybrid, top-k 1 and 3) over the demo's index (built
here when missing): EM/F1 and the training command's seconds. The settings run one after
the other (their seconds are comparable only on a quiet machine); the record is rewritten
after each, so a cut run keeps what it measured. ``--seeds`` runs each setting once a seed;
``--against SRC`` runs each also on another tree's code (e.g. a clone at an older commit),
interleaved with this one, for a side-by-side comparison.

Run:  .venv/bin/python bench/reader_settings.py [--only defaults,former] [--name NAME]
      [--seeds 0,1,2] [--against /tmp/before/src]
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

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


def odqa(*args: str, src: Path = ROOT / "src") -> tuple[str, float]:
    """``odqa ARGS`` on the code in ``src`` (this tree's): its stdout and wall seconds."""
    return run_odqa(src, *args)


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
    parser.add_argument("--seeds", help="comma list of seeds, each setting run once a seed")
    parser.add_argument("--against", type=Path, help="another tree's src/ to run alongside")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(SETTINGS)
    seeds = args.seeds.split(",") if args.seeds else [None]
    trees = {"this": ROOT / "src", **({"against": args.against} if args.against else {})}
    runs = [(name, seed, tree) for name in chosen for seed in seeds for tree in trees]
    if not INDEX.exists():
        odqa("index", str(SAMPLE / "questions.json"), str(INDEX), "--retrievers", "bm25,dense")
    figures: dict = {"load_before": os.getloadavg(), "trees": {k: str(v) for k, v in trees.items()}}
    figures["settings"] = {}
    for number, (name, seed, tree) in enumerate(runs):
        options = SETTINGS[name] + (["--seed", seed] if seed is not None else [])
        label = "/".join(part for part in (name, seed and f"seed-{seed}", tree) if part)
        out = WORK / "reader-settings" / label.replace("/", "-")
        _, seconds = odqa(
            "train", "reader", str(SAMPLE / "train.json"), "--out", str(out), "--overwrite",
            *options, src=trees[tree],
        )  # fmt: skip
        table, _ = odqa(
            "eval-qa", str(INDEX), "--questions", str(SAMPLE / "questions.json"),
            "--reader-model", str(out), "--top-k", "1,3",
        )  # fmt: skip
        figures["settings"][label] = {
            "options": options,
            "train_seconds": round(seconds, 1),
            **scores(table),
        }
        figures["load_after"] = os.getloadavg()
        left = ["/".join(str(p) for p in run if p) for run in runs[number + 1 :]]
        report(args.name, {**figures, **({"not_yet_run": left} if left else {})})


if __name__ == "__main__":
    main()
