"""Fusion: the arithmetic of each method and the deterministic tie rule."""

from __future__ import annotations

import random

import pytest

from odqa.errors import OdqaError
from odqa.retrieve.fusion import fuse, minmax, zscore


def test_minmax_scales_to_unit_interval_and_flat_lists_to_one() -> None:
    assert minmax([3.0, 2.0, 1.0]) == [1.0, 0.5, 0.0]
    assert minmax([5.0, 5.0]) == [1.0, 1.0]


def test_zscore_centres_and_scales() -> None:
    values = zscore([3.0, 1.0])
    assert values == pytest.approx([1.0, -1.0])


def test_minmax_weighted_sum_and_missing_key_counts_as_zero() -> None:
    bm25 = [("a", 10.0), ("b", 5.0), ("c", 0.0)]
    dense = [("b", 0.9), ("d", 0.5), ("a", 0.1)]
    fused = dict(fuse([bm25, dense], "minmax", [1.0, 1.0]))
    assert fused["a"] == pytest.approx(1.0 + 0.0)
    assert fused["b"] == pytest.approx(0.5 + 1.0)
    assert fused["d"] == pytest.approx(0.0 + 0.5)
    assert [key for key, _ in fuse([bm25, dense])][:2] == ["b", "a"]


def test_weights_shift_the_winner() -> None:
    bm25 = [("a", 2.0), ("b", 1.0)]
    dense = [("b", 2.0), ("a", 1.0)]
    assert fuse([bm25, dense], "minmax", [0.8, 0.2])[0][0] == "a"
    assert fuse([bm25, dense], "minmax", [0.2, 0.8])[0][0] == "b"


def test_rrf_uses_ranks_only() -> None:
    fused = dict(fuse([[("a", 100.0), ("b", 1.0)], [("b", 0.3)]], "rrf"))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)


def test_exact_ties_break_by_best_rank_then_key_whatever_the_input_order() -> None:
    # RRF mirror image: x is first in list 1, y first in list 2 -> equal fused scores.
    one = [("x", 2.0), ("y", 1.0)]
    two = [("y", 2.0), ("x", 1.0)]
    expected = [key for key, _ in fuse([one, two], "rrf")]
    assert expected == ["x", "y"]  # same best rank (1): key order decides
    assert [key for key, _ in fuse([two, one], "rrf")] == expected
    # three-way tie at 1.0: best rank first (q and z reached rank 1, m only 2), then key
    fused = fuse([[("z", 1.0), ("m", 1.0)], [("q", 5.0)]], "minmax")
    assert [key for key, _ in fused] == ["q", "z", "m"]


def test_result_does_not_depend_on_insertion_order() -> None:
    rng = random.Random(0)
    lists = [[(f"d{i}", float(rng.randint(0, 5))) for i in range(30)] for _ in range(2)]
    reference = fuse([sorted(lst, key=lambda x: -x[1]) for lst in lists], "zscore")
    for _ in range(5):
        shuffled = [lst[:] for lst in lists]
        for lst in shuffled:
            rng.shuffle(lst)
            lst.sort(key=lambda x: -x[1])  # a stable sort keeps the shuffled order in ties
        again = fuse(shuffled, "zscore")
        assert {k: round(v, 9) for k, v in again} == {k: round(v, 9) for k, v in reference}


def test_bad_method_and_weight_count_are_refused() -> None:
    with pytest.raises(OdqaError, match="fusion method"):
        fuse([[("a", 1.0)]], "max")
    with pytest.raises(OdqaError, match="2 weights given for 1 lists"):
        fuse([[("a", 1.0)]], "minmax", [0.5, 0.5])
