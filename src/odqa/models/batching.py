"""Grouping texts into encoding batches by token length, so that no batch pads much.

The encoders measure every text of a call in tokens first (lengths only, a block of texts at a
time, so memory stays small), then batch the whole call longest first: a builder's window of
documents is sorted as one, not batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from odqa.errors import OdqaError

LENGTH_BLOCK = 2048
"""Texts tokenized at a time while measuring lengths (their token ids are not kept)."""


def token_lengths(
    texts: Sequence[str], tokenize: Callable[[list[str]], list[list[int]]]
) -> np.ndarray:
    """The token count of each text, as ``tokenize`` (texts to token id lists) cuts it."""
    lengths = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), LENGTH_BLOCK):
        block = tokenize(list(texts[start : start + LENGTH_BLOCK]))
        lengths[start : start + len(block)] = [len(ids) for ids in block]
    return lengths


def length_batches(lengths: Sequence[int] | np.ndarray, batch_size: int) -> list[list[int]]:
    """Row indices of each batch of at most ``batch_size`` rows, longest rows first.

    Rows of equal length keep their input order, so the batches depend only on the lengths.
    """
    if batch_size < 1:
        raise OdqaError(f"batch_size must be at least 1, got {batch_size}")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable").tolist()
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
