"""Question answering metrics: SQuAD v1.1 exact match and token F1, and answer recall.

The normalisation is the official SQuAD v1.1 script's, in its order: lowercase, drop ASCII
punctuation, drop the articles a/an/the, collapse whitespace. Scores of a question are the best
over its gold answers; averages are in percent, like the official script.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

from odqa.corpus.records import Query

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lowercase, without punctuation and articles, single spaces (SQuAD v1.1)."""
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _golds(golds: str | Sequence[str]) -> Sequence[str]:
    return (golds,) if isinstance(golds, str) else golds


def exact_match(prediction: str, golds: str | Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer, else 0.0."""
    wanted = normalize_answer(prediction)
    return float(any(wanted == normalize_answer(gold) for gold in _golds(golds)))


def _token_f1(prediction: str, gold: str) -> float:
    predicted = normalize_answer(prediction).split()
    expected = normalize_answer(gold).split()
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision = same / len(predicted)
    recall = same / len(expected)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, golds: str | Sequence[str]) -> float:
    """Token-overlap F1 of the normalised texts, the best over the gold answers (0.0 if none)."""
    return max((_token_f1(prediction, gold) for gold in _golds(golds)), default=0.0)


def answer_in_text(answers: str | Sequence[str], text: str) -> bool:
    """Whether a gold answer occurs in ``text`` as whole tokens, both normalised (top-k
    retrieval accuracy's test: "cat" is found in "The cat sat", not in "concatenate")."""
    haystack = f" {normalize_answer(text)} "
    return any(
        (needle := normalize_answer(answer)) and f" {needle} " in haystack
        for answer in _golds(answers)
    )


def qa_metrics(predictions: Mapping[str, str], questions: Sequence[Query]) -> dict[str, float]:
    """Mean exact match and F1 in percent over the questions that have gold answers.

    A question missing from ``predictions`` scores 0 (as in the official script); questions
    without gold answers are skipped. ``count`` is the number of questions scored.
    """
    scored = [question for question in questions if question.answers]
    em = sum(exact_match(predictions.get(q.id, ""), q.answers) for q in scored)
    overlap = sum(f1(predictions.get(q.id, ""), q.answers) for q in scored)
    count = len(scored)
    return {
        "em": 100.0 * em / count if count else 0.0,
        "f1": 100.0 * overlap / count if count else 0.0,
        "count": count,
    }
