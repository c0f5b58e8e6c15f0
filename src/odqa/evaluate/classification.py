"""Yes/no classification metrics, as BioASQ reports them: accuracy, F1 of each class, macro-F1.

F1 of a class is ``2·tp / (2·tp + fp + fn)`` with that class as the positive one (the harmonic
mean of its precision and recall); a class never predicted nor present scores 0, and so does
every figure of an empty set. Macro-F1 is the plain mean of F1-yes and F1-no.
"""

from __future__ import annotations

from collections.abc import Sequence

from odqa.errors import OdqaError

YESNO = ("yes", "no")


def class_f1(predictions: Sequence[str], labels: Sequence[str], positive: str) -> float:
    """F1 of ``positive`` against every other label; 0 when it is never predicted nor gold."""
    hits = sum(p == positive and g == positive for p, g in zip(predictions, labels, strict=True))
    predicted = sum(p == positive for p in predictions)
    gold = sum(g == positive for g in labels)
    return 2 * hits / (predicted + gold) if predicted + gold else 0.0


def yesno_metrics(predictions: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """``accuracy``, ``f1_yes``, ``f1_no``, ``macro_f1`` (fractions) and ``count`` of
    ``predictions`` against gold ``labels``, both ``"yes"``/``"no"`` (lowercase)."""
    if len(predictions) != len(labels):
        raise OdqaError(f"{len(predictions)} predictions for {len(labels)} labels")
    strange = sorted({*predictions, *labels} - set(YESNO))
    if strange:
        raise OdqaError(f"yes/no metrics take 'yes' and 'no' only, got {strange[0]!r}")
    right = sum(p == g for p, g in zip(predictions, labels, strict=True))
    f1_yes = class_f1(predictions, labels, "yes")
    f1_no = class_f1(predictions, labels, "no")
    return {
        "accuracy": right / len(labels) if labels else 0.0,
        "f1_yes": f1_yes,
        "f1_no": f1_no,
        "macro_f1": (f1_yes + f1_no) / 2,
        "count": len(labels),
    }
