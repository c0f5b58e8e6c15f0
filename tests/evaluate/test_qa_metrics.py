"""SQuAD v1.1 exact match and F1, checked by hand."""

from __future__ import annotations

import pytest

from odqa.corpus.records import Query
from odqa.evaluate.qa import answer_in_text, exact_match, f1, normalize_answer, qa_metrics


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat", "cat"),
        ("  An apple,   a PEAR!  ", "apple pear"),
        ("the theory of the atom", "theory of atom"),  # "the" inside "theory" stays
        ("U.S. dollars", "us dollars"),
        ("", ""),
    ],
)
def test_normalize_answer_follows_squad(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_exact_match() -> None:
    assert exact_match("The Cat", ["cat"]) == 1.0
    assert exact_match("a cat.", ["dog", "the cat"]) == 1.0
    assert exact_match("cats", ["cat"]) == 0.0
    assert exact_match("c", "cat") == 0.0  # a bare string is one gold answer, not characters
    assert exact_match("anything", []) == 0.0


def test_f1_partial_overlap_by_hand() -> None:
    # prediction tokens big red dog, gold red dog barks: 2 shared, P = R = 2/3
    assert f1("the big red dog", ["red dog barks"]) == pytest.approx(2 / 3)
    # x x y vs x y: shared x once and y once = 2, P = 2/3, R = 1, F1 = 0.8
    assert f1("x x y", "x y") == pytest.approx(0.8)
    # the best gold counts
    assert f1("red dog", ["cat", "red dog"]) == 1.0
    assert f1("red dog", ["cat"]) == 0.0
    assert f1("", ["cat"]) == 0.0
    assert f1("the", ["a"]) == 0.0  # both normalise to nothing: no shared token (v1.1 rule)


def test_answer_in_text_matches_whole_tokens() -> None:
    assert answer_in_text(["vitamin c"], "Scurvy: a lack of Vitamin C.")
    assert answer_in_text("cat", "The cat sat.")
    assert not answer_in_text("cat", "concatenate")
    assert not answer_in_text(["the"], "the cat")  # normalises to nothing: never found


def test_qa_metrics_in_percent() -> None:
    questions = [
        Query("q1", "what causes scurvy?", ("vitamin C",)),
        Query("q2", "a dog?", ("red dog barks",)),
        Query("q3", "missing prediction", ("x",)),
        Query("q4", "no gold answers: skipped", ()),
    ]
    predictions = {"q1": "Vitamin C.", "q2": "red dog", "q4": "anything"}
    metrics = qa_metrics(predictions, questions)
    # q2: P = 1, R = 2/3, F1 = 0.8; q3 scores 0
    assert metrics["count"] == 3
    assert metrics["em"] == pytest.approx(100 / 3)
    assert metrics["f1"] == pytest.approx(100 * (1 + 0.8 + 0) / 3)
    assert qa_metrics({}, []) == {"em": 0.0, "f1": 0.0, "count": 0}
