"""BM25's scores, each variant as Kamphuis, de Vries, Boytsov and Lin define it ("Which BM25
Do You Mean? A Large-Scale Reproducibility Study of Scoring Variants", ECIR 2020), computed
here over whole arrays: odqa's streamed build scores its postings itself and writes them in
the form bm25s searches (:mod:`odqa.index.bm25`), since bm25s's public API builds an index
whole in memory only. Where the paper leaves a choice, odqa makes bm25s's, so that an index
odqa writes scores as bm25s would have (``tests/index/test_bm25_streaming.py`` checks every
variant against bm25s's own ``BM25.index``): Robertson's idf is floored at 0, Lucene's term
weight leaves out ``k1 + 1``.

A score is ``idf(term) * weight(tf, passage length)``. BM25L and BM25+ give a passage that
lacks a term a score too (the weight at ``tf = 0``, at the average length); it is kept apart
as each term's *nonoccurrence* score, so that the matrix stays sparse: the postings hold the
score less it, and a search adds it back for every query term.

>>> idf("lucene", np.array([1, 50]), documents=100).round(2).tolist()
[4.21, 0.69]
"""

from __future__ import annotations

import numpy as np

from odqa.errors import OdqaError

METHODS = ("robertson", "lucene", "atire", "bm25l", "bm25+")
WITH_NONOCCURRENCE = ("bm25l", "bm25+")


def check_method(method: str) -> str:
    if method not in METHODS:
        raise OdqaError(f"BM25 method must be one of {METHODS}, got {method!r}")
    return method


def idf(method: str, frequencies: np.ndarray, documents: int) -> np.ndarray:
    """Each term's inverse document frequency from its document frequency, float64."""
    df = np.asarray(frequencies, np.float64)
    n = float(documents)
    with np.errstate(divide="ignore"):
        if method == "robertson":
            return np.log(np.maximum(1.0, (n - df + 0.5) / (df + 0.5)))
        if method == "lucene":
            return np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        if method == "atire":
            return np.log(n / df)
        if method == "bm25l":
            return np.log((n + 1.0) / (df + 0.5))
        if method == "bm25+":
            return np.log((n + 1.0) / df)
    raise OdqaError(f"BM25 method must be one of {METHODS}, got {method!r}")


def weight(
    method: str,
    tf: np.ndarray,
    lengths: np.ndarray,
    average: float,
    k1: float,
    b: float,
    delta: float,
) -> np.ndarray:
    """The term-frequency weight of ``tf`` occurrences in passages of ``lengths`` tokens."""
    norm = 1.0 - b + b * np.asarray(lengths, np.float64) / average
    return weight_normed(method, np.asarray(tf, np.float64), norm, k1, delta)


def weight_normed(
    method: str, tf: np.ndarray, norm: np.ndarray, k1: float, delta: float
) -> np.ndarray:
    """:func:`weight`, the length normalisation ``1 - b + b * length / average`` given
    (computed in the arrays' own precision)."""
    if method in ("robertson", "lucene"):
        return tf / (k1 * norm + tf)
    if method == "atire":
        return tf * (k1 + 1.0) / (tf + k1 * norm)
    if method == "bm25l":
        c = tf / norm
        return (k1 + 1.0) * (c + delta) / (k1 + c + delta)
    if method == "bm25+":
        return (k1 + 1.0) * tf / (k1 * norm + tf) + delta
    raise OdqaError(f"BM25 method must be one of {METHODS}, got {method!r}")


def absent_weight(method: str, k1: float, delta: float) -> float:
    """The weight of a term in a passage that lacks it, at the average length: 0 but for
    BM25L and BM25+."""
    if method not in WITH_NONOCCURRENCE:
        return 0.0
    return float(weight_normed(method, np.zeros(1), np.ones(1), k1, delta)[0])


def nonoccurrence(
    method: str, frequencies: np.ndarray, documents: int, k1: float, b: float, delta: float
) -> np.ndarray | None:
    """Each term's score in a passage that lacks it (BM25L, BM25+; None for the others)."""
    if method not in WITH_NONOCCURRENCE:
        return None
    scores = idf(method, frequencies, documents) * absent_weight(method, k1, delta)
    return np.where(np.asarray(frequencies) > 0, scores, 0.0)
