"""Fusing ranked lists: reciprocal rank fusion and normalised weighted sums.

Every method takes ranked lists of ``(key, score)`` (best first) and returns one ranked list.
Ties in the fused score are broken by a fixed rule, never by the order of insertion:
first the better (smaller) best rank the key reached in any input list, then the key itself
in ascending order.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import TypeVar

from odqa.errors import OdqaError

K = TypeVar("K", bound=Hashable)
Ranked = Sequence[tuple[K, float]]

METHODS = ("zscore", "minmax", "rrf")
DEFAULT_METHOD = "zscore"
"""Measured best on BEIR SciFact and SQuAD open retrieval (see the README's figures)."""
RRF_K = 60


def minmax(scores: Sequence[float]) -> list[float]:
    """Scale to [0, 1]; a list whose scores are all equal maps to 1.0."""
    low, high = min(scores), max(scores)
    if high == low:
        return [1.0] * len(scores)
    return [(score - low) / (high - low) for score in scores]


def zscore(scores: Sequence[float]) -> list[float]:
    """Centre on the mean and divide by the standard deviation (1.0 when it is 0)."""
    mean = sum(scores) / len(scores)
    spread = math.sqrt(sum((score - mean) ** 2 for score in scores) / len(scores)) or 1.0
    return [(score - mean) / spread for score in scores]


def _contributions(ranked: Ranked, method: str, rrf_k: int) -> tuple[dict, float]:
    """Each key's normalised score in one list, and the value a missing key gets."""
    if not ranked:
        return {}, 0.0
    keys = [key for key, _ in ranked]
    if method == "rrf":
        return {key: 1.0 / (rrf_k + rank) for rank, key in enumerate(keys, start=1)}, 0.0
    scores = [score for _, score in ranked]
    if method == "minmax":
        return dict(zip(keys, minmax(scores), strict=True)), 0.0
    values = zscore(scores)
    return dict(zip(keys, values, strict=True)), min(values)


def check_method(method: str) -> str:
    """``method`` if it is a fusion method odqa knows, else an :class:`OdqaError`."""
    if method not in METHODS:
        raise OdqaError(f"fusion method must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def fuse(
    lists: Sequence[Ranked],
    method: str = DEFAULT_METHOD,
    weights: Sequence[float] | None = None,
    rrf_k: int = RRF_K,
) -> list[tuple[K, float]]:
    """Fuse ranked lists into one, best first.

    ``minmax`` and ``zscore`` normalise each list, then add them with ``weights``; a key absent
    from a list gets 0 there (minmax) or that list's lowest z-score (zscore). ``rrf`` adds
    ``weight / (rrf_k + rank)``; an absent key adds nothing.

    >>> fuse([[("a", 3.0), ("b", 1.0)], [("b", 0.9), ("c", 0.5)]], "rrf")
    [('b', 0.03252247488101534), ('a', 0.01639344262295082), ('c', 0.016129032258064516)]
    """
    check_method(method)
    weights = list(weights) if weights is not None else [1.0] * len(lists)
    if len(weights) != len(lists):
        raise OdqaError(f"{len(weights)} weights given for {len(lists)} lists")
    if not all(math.isfinite(weight) for weight in weights):
        raise OdqaError(f"weights must be finite numbers, got {weights}")
    fused: dict = {}
    best_rank: dict = {}
    parts = [_contributions(ranked, method, rrf_k) for ranked in lists]
    for ranked in lists:
        for rank, (key, _) in enumerate(ranked, start=1):
            best_rank[key] = min(rank, best_rank.get(key, rank))
    for key in best_rank:
        fused[key] = sum(
            weight * values.get(key, missing)
            for weight, (values, missing) in zip(weights, parts, strict=True)
        )
    order = sorted(fused, key=lambda key: (-fused[key], best_rank[key], key))
    return [(key, fused[key]) for key in order]
