"""Token scale levels (below 16) two to a byte: token ``i`` in the low half of byte
``i // 2`` when ``i`` is even, the high half when odd; written a block at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from odqa.fs import NpyAppender

BLOCK_BYTES = 1 << 24


def pack(levels: np.ndarray) -> np.ndarray:
    """(ceil(n / 2),) uint8 of ``levels`` (n,) below 16."""
    levels = np.asarray(levels, dtype=np.uint8)
    if len(levels) % 2:
        levels = np.append(levels, np.uint8(0))
    return levels[0::2] | (levels[1::2] << 4)


def unpack(packed: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(len(rows),) uint8: the levels of tokens ``rows`` from ``packed``."""
    rows = np.asarray(rows, dtype=np.int64)
    return (np.asarray(packed[rows >> 1]) >> ((rows & 1) << 2).astype(np.uint8)) & 15


class NibbleAppender:
    """A ``.npy`` of packed levels, appended a block of tokens at a time; an odd token out
    waits for the next block (or :meth:`close`)."""

    def __init__(self, path: Path) -> None:
        self.file = NpyAppender(path, np.uint8)
        self._waiting = np.zeros(0, dtype=np.uint8)

    def append(self, levels: np.ndarray) -> None:
        levels = np.concatenate([self._waiting, np.asarray(levels, dtype=np.uint8)])
        whole = len(levels) - len(levels) % 2
        self.file.append(pack(levels[:whole]))
        self._waiting = levels[whole:]

    def extend_packed(self, packed: np.ndarray, tokens: int) -> None:
        """Start the file with the first ``tokens`` levels of ``packed`` (before any
        :meth:`append`)."""
        whole = tokens // 2
        for start in range(0, whole, BLOCK_BYTES):
            self.file.append(packed[start : min(whole, start + BLOCK_BYTES)])
        if tokens % 2:
            self._waiting = unpack(packed, np.array([tokens - 1]))

    def close(self, expected_tokens: int) -> Path:
        """Write the odd token out, then the header; the file must hold ``expected_tokens``."""
        if len(self._waiting):
            self.file.append(pack(self._waiting))
        return self.file.close(expected=(expected_tokens + 1) // 2)
