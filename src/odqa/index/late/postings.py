"""The inverted file's lists of pids, Elias-Fano coded with whole-byte low parts.

A list of ``n`` ascending pids with low-part width ``w`` (0, 8, 16 or 24 bits, whichever
makes the list smallest) is stored as its high part, then its low part:

- high: a bit string (little-endian bit order, padded to a whole byte) with bit
  ``(pid >> w) + i`` set for the list's ``i``-th pid: ``(last >> w) + n`` bits;
- low: the low ``w / 8`` little-endian bytes of each pid, in order.

At a million passages an entry takes about 12 bits (a 3-byte pid took 24). The lists of an
index sit end to end in one byte array; ``starts`` (one more than the lists) says where
each begins, ``widths`` its low-part width and ``lengths`` its entry count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOW_WIDTHS = (0, 8, 16, 24)
PID_BYTES = 4


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start, start + length)`` for each pair, without a Python loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    firsts = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum())) - np.repeat(firsts - np.asarray(starts), lengths)


def low_widths(lengths: np.ndarray, lasts: np.ndarray) -> np.ndarray:
    """(lists,) uint8: for lists of ``lengths`` entries whose largest pid is ``lasts``, the
    low-part width of :data:`LOW_WIDTHS` that stores each in the fewest bytes."""
    sizes = np.stack([list_bytes(lengths, lasts, width) for width in LOW_WIDTHS])
    return np.asarray(LOW_WIDTHS, dtype=np.uint8)[sizes.argmin(axis=0)]


def list_bytes(lengths: np.ndarray, lasts: np.ndarray, widths: np.ndarray | int) -> np.ndarray:
    """Bytes of each list (high part, then low part); 0 for an empty list."""
    lengths = np.asarray(lengths, dtype=np.int64)
    widths = np.asarray(widths, dtype=np.int64)
    high_bits = (np.asarray(lasts, dtype=np.int64) >> widths) + lengths
    return np.where(lengths > 0, (high_bits + 7) // 8 + lengths * (widths // 8), 0)


def encode(pids: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Code consecutive lists (``pids`` ascending within each, ``lengths`` entries each):
    the bytes of all of them end to end, each list's byte count and its low-part width."""
    pids = np.asarray(pids, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    ends = np.cumsum(lengths)
    firsts = ends - lengths
    lasts = np.where(lengths > 0, pids[np.maximum(ends - 1, 0)] if len(pids) else 0, 0)
    widths = low_widths(lengths, lasts)
    sizes = list_bytes(lengths, lasts, widths)
    low_sizes = lengths * (widths.astype(np.int64) // 8)
    high_sizes = sizes - low_sizes
    starts = np.cumsum(sizes) - sizes
    out = np.zeros(int(sizes.sum()), dtype=np.uint8)
    entry_widths = np.repeat(widths.astype(np.int64), lengths)
    rank = np.arange(len(pids)) - np.repeat(firsts, lengths)
    bits = np.zeros(int(high_sizes.sum()) * 8, dtype=bool)
    high_firsts = np.cumsum(high_sizes) - high_sizes
    bits[np.repeat(high_firsts * 8, lengths) + (pids >> entry_widths) + rank] = True
    out[ranges(starts, high_sizes)] = np.packbits(bits, bitorder="little")
    low_bytes = pids.astype("<u4").view(np.uint8).reshape(-1, PID_BYTES)
    kept = np.arange(PID_BYTES) < (entry_widths // 8)[:, None]
    out[ranges(starts + high_sizes, low_sizes)] = low_bytes[kept]
    return out, sizes, widths


def decode(
    data: np.ndarray, starts: np.ndarray, widths: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """int64 pids of the lists beginning at byte ``starts`` (with those ``widths`` and
    ``lengths``; ``starts`` has one more entry, the end of the last), end to end."""
    lengths = np.asarray(lengths, dtype=np.int64)
    widths = np.asarray(widths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    first_bytes = np.asarray(starts[:-1], dtype=np.int64)
    low_sizes = lengths * (widths // 8)
    high_sizes = np.diff(np.asarray(starts, dtype=np.int64)) - low_sizes
    bits = np.unpackbits(np.asarray(data[ranges(first_bytes, high_sizes)]), bitorder="little")
    firsts = np.cumsum(lengths) - lengths
    high_firsts = (np.cumsum(high_sizes) - high_sizes) * 8
    pids = np.flatnonzero(bits.view(bool)) - np.repeat(high_firsts - firsts, lengths)
    pids -= np.arange(total)
    for width in np.unique(widths[lengths > 0]):
        if width == 0:
            continue
        lists = np.flatnonzero((widths == width) & (lengths > 0))
        entries = ranges(firsts[lists], lengths[lists])
        low = np.asarray(data[ranges(first_bytes[lists] + high_sizes[lists], low_sizes[lists])])
        wide = np.zeros((len(entries), PID_BYTES), dtype=np.uint8)
        wide[:, : width // 8] = low.reshape(-1, width // 8)
        pids[entries] = (pids[entries] << width) | wide.view("<u4").reshape(-1)
    return pids


@dataclass
class PostingLists:
    """The coded lists of an index: ``data`` (bytes, memory-mapped), ``starts`` (lists + 1,
    int64 byte offsets), ``widths`` (uint8) and ``lengths`` (int64 entries)."""

    data: np.ndarray
    starts: np.ndarray
    widths: np.ndarray
    lengths: np.ndarray

    def read(self, lists: np.ndarray) -> np.ndarray:
        """int64 pids of the given lists, end to end."""
        lists = np.asarray(lists, dtype=np.int64)
        bounds = np.stack([self.starts[lists], self.starts[lists + 1]])
        return _decode_spans(self.data, bounds, self.widths[lists], self.lengths[lists])


def _decode_spans(
    data: np.ndarray, bounds: np.ndarray, widths: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """:func:`decode` of lists given as (2, lists) byte ``bounds`` (not end to end)."""
    sizes = bounds[1] - bounds[0]
    packed_starts = np.concatenate([[0], np.cumsum(sizes)])
    packed = np.asarray(data[ranges(bounds[0], sizes)])
    return decode(packed, packed_starts, widths, lengths)
