"""Yes/no reader on the BioASQ 12b golden yes/no questions, 5-fold cross-validation.

The 102 yes/no questions of ``12B{1,2,3,4}_golden.json`` (66 yes, 36 no) are dealt into folds
stratified by answer (a seeded shuffle of each class, dealt in turn). Each fold trains a reader
from the embedded all-MiniLM-L6-v2 on the other folds' questions with their gold snippets (the
first ``--train-snippets`` of each question, to keep a fold to a couple of minutes on 2 CPU
cores) and answers its own questions from all their snippets (mean yes-probability). Reported
per fold and pooled over all 102 answers: accuracy, F1-yes, F1-no, macro-F1, beside the all-yes
baseline and a coin flip's expected figures.

Run: .venv/bin/python bench/yesno_bioasq.py
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time

from common import DATA, WORK, report
from odqa.evaluate.classification import yesno_metrics
from odqa.read.yesno import YesNoReader
from odqa.train.yesno import YesNoQuestion, YesNoTrainConfig, read_yesno_questions, train_yesno

FILES = [DATA / "bioasq-12b-golden" / f"12B{batch}_golden.json" for batch in (1, 2, 3, 4)]


def stratified_folds(questions: list[YesNoQuestion], folds: int, seed: int) -> list[list[int]]:
    """Question indexes of each fold: each class shuffled with ``seed`` and dealt in turn."""
    dealt: list[list[int]] = [[] for _ in range(folds)]
    turn = 0
    for label in ("yes", "no"):
        members = [i for i, question in enumerate(questions) if question.label == label]
        random.Random(f"{seed}-{label}").shuffle(members)
        for index in members:
            dealt[turn % folds].append(index)
            turn += 1
    return [sorted(fold) for fold in dealt]


def coin_flip(labels: list[str]) -> dict[str, float]:
    """F1 figures of the expected counts of answering yes or no at random, 50/50."""
    share = {label: labels.count(label) / len(labels) for label in ("yes", "no")}
    f1 = {label: 2 * 0.5 * share[label] / (0.5 + share[label]) for label in share}
    return {"accuracy": 0.5, "f1_yes": f1["yes"], "f1_no": f1["no"],
            "macro_f1": (f1["yes"] + f1["no"]) / 2}  # fmt: skip


def rounded(figures: dict) -> dict:
    return {name: round(value, 4) for name, value in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--train-snippets", type=int, default=5)
    args = parser.parse_args()
    began = time.perf_counter()
    questions = read_yesno_questions(FILES)
    config = YesNoTrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_length=args.max_length,
        seed=args.seed,
    )
    labels = [question.label for question in questions]
    predictions = [""] * len(questions)
    per_fold = []
    for number, held_out in enumerate(stratified_folds(questions, args.folds, args.seed)):
        kept = set(held_out)
        train = [
            dataclasses.replace(question, snippets=question.snippets[: args.train_snippets])
            for i, question in enumerate(questions)
            if i not in kept
        ]
        folder = WORK / "yesno-bioasq" / f"fold-{number}"
        summary = train_yesno(train, folder, config, overwrite=True, show_progress=True)
        reader = YesNoReader(folder, max_length=args.max_length)
        for i in held_out:
            predictions[i] = reader.read(questions[i].question, questions[i].snippets).text
        fold_labels = [labels[i] for i in held_out]
        per_fold.append(
            {
                "questions": len(held_out),
                "yes": fold_labels.count("yes"),
                **rounded(yesno_metrics([predictions[i] for i in held_out], fold_labels)),
                "all_yes_macro_f1": round(
                    yesno_metrics(["yes"] * len(held_out), fold_labels)["macro_f1"], 4
                ),
                "train_pairs": summary["pairs"],
                "class_weights": [round(weight, 4) for weight in summary["class_weights"]],
                "train_seconds": summary["seconds"],
            }
        )
    report(
        "yesno_bioasq",
        {
            "questions": len(questions),
            "yes": labels.count("yes"),
            "no": labels.count("no"),
            "snippets": sum(len(question.snippets) for question in questions),
            "settings": vars(args),
            "pooled": rounded(yesno_metrics(predictions, labels)),
            "all_yes": rounded(yesno_metrics(["yes"] * len(labels), labels)),
            "coin_flip": rounded(coin_flip(labels)),
            "predicted_yes": predictions.count("yes"),
            "folds": per_fold,
            "seconds": round(time.perf_counter() - began, 1),
        },
    )


if __name__ == "__main__":
    main()
