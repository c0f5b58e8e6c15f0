"""Synthetic SciFact-like passages: words drawn from SciFact's own vocabulary by frequency.

Used to grow a corpus past what the shared data holds (the BM25 scale bench) and as
distractors around SciFact's real corpus (the relevance-under-load bench). Seeded: a seed and
a size give the same corpus on every run. Imports no torch, so a child process that only
builds BM25 measures BM25 alone.
"""

from __future__ import annotations

import collections
import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

WORD = re.compile(r"\w+")
BLOCK = 10_000


def scifact_documents(data: Path) -> list[dict]:
    """SciFact's corpus records (``_id``, ``title``, ``text``)."""
    with gzip.open(data / "beir-scifact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


class SciFactLike:
    """A unigram model of SciFact's words, and its documents' lengths in words."""

    def __init__(self, documents: list[dict]) -> None:
        counts = collections.Counter(
            word for doc in documents for word in WORD.findall(f"{doc['title']} {doc['text']}")
        )
        self.words = list(counts)
        frequencies = np.asarray([counts[word] for word in self.words], dtype=np.float64)
        self.cumulative = np.cumsum(frequencies / frequencies.sum())
        self.lengths = np.asarray(
            [len(WORD.findall(f"{d['title']} {d['text']}")) for d in documents], dtype=np.int64
        )

    def texts(self, count: int, seed: int, lengths: str = "scifact") -> Iterator[str]:
        """``count`` texts; ``lengths`` is ``scifact`` (SciFact's own length distribution) or
        ``passage`` (60 to 140 words, DPR-like passages)."""
        rng = np.random.default_rng(seed)
        words = self.words
        for start in range(0, count, BLOCK):
            size = min(BLOCK, count - start)
            if lengths == "scifact":
                sizes = rng.choice(self.lengths, size=size)
            else:
                sizes = rng.integers(60, 141, size=size)
            picks = np.searchsorted(self.cumulative, rng.random(int(sizes.sum())))
            picks = np.minimum(picks, len(words) - 1).tolist()
            offset = 0
            for length in sizes.tolist():
                yield " ".join(map(words.__getitem__, picks[offset : offset + length]))
                offset += length


def write_jsonl(path: Path, records: Iterator[tuple[str, str]]) -> int:
    """Write ``(id, text)`` records as a JSONL corpus; returns how many."""
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for doc_id, text in records:
            handle.write(f'{{"id": "{doc_id}", "text": "{text}"}}\n')
            count += 1
    return count
