"""BM25's postings in segments, scored when searched with the collection's statistics now.

A segment is a folder ``bm25/segments/NNNNN/`` holding the postings of a run of consecutive
passage rows: ``terms.json`` (term -> column), ``indptr.npy`` (where each column's postings
start), ``rows.npy`` (the passage rows, ascending within a column), ``tf.npy`` (how often the
term occurs there, uint16, saturating), ``lengths.npy`` (each row's tokens) and
``segment.json`` (its first row and counts). A build writes one segment; an addition writes
one more and touches no other. Segments never change once written: small ones are merged
into one, and one whose passages are much deleted is written again without them
(:func:`merge`), each as a new segment.

Scores are computed at search time, as Lucene computes them across its segments: the
collection's statistics — how many passages are live, their average length, how many live
passages hold each query term — are taken over every segment and the deleted flags now, so an
index changed by additions and deletions scores every passage as a build of its final
collection would (:mod:`odqa.index.bm25_scoring` for the formulas). A query term's postings
are gathered from each segment that has it, and scored; a searcher keeps the scores of
common terms for the queries that follow.

A build never holds the corpus's tokens: each batch of passages becomes (term, row,
frequency) postings, buffered up to :data:`SPILL_POSTINGS` and then appended to one of
:data:`BUCKETS` files by term; at the end each bucket is sorted in turn and appended to the
segment's arrays, so memory is bounded by one bucket, the vocabulary and the passage lengths.
"""

from __future__ import annotations

import itertools
import json
import shutil
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import odqa.fs as fs
from odqa.errors import IndexFormatError
from odqa.index import bm25_scoring as scoring
from odqa.index.analysis import Analyzer
from odqa.index.settings import BM25Settings

SEGMENTS = "segments"
TERMS, INDPTR, ROWS, TF, LENGTHS, SEGMENT = (
    "terms.json",
    "indptr.npy",
    "rows.npy",
    "tf.npy",
    "lengths.npy",
    "segment.json",
)
ANALYSIS_BATCH = 1024
BUCKETS = 64
SPILL_POSTINGS = 8_000_000
POSTING = np.dtype([("term", "<i4"), ("row", "<i4"), ("tf", "<u4")])
SPILL_FOLDER = ".postings"
TF_MAX = np.iinfo(np.uint16).max
CACHED_POSTINGS = 4096
CACHED_BYTES = 256 * 2**20
"""A searcher keeps the scores of terms of at least :data:`CACHED_POSTINGS` postings it has
computed, up to this many bytes (the least recently used go first)."""


class TermIds:
    """Maps texts to term ids through the analyzer, normalising each distinct word once.

    Words get ids in a C-level dictionary lookup; a new word is normalised (stemmed, or
    dropped as a stopword) when first seen, and its term looked up in ``vocab``.
    """

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.vocab: dict[str, int] = {}
        self._word_ids: defaultdict[str, int] = defaultdict(itertools.count().__next__)
        self._word_terms = np.zeros(0, dtype=np.int32)

    def map(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Term ids of all texts, concatenated (int32), and each text's count of them."""
        words = self.analyzer.split(texts)
        flat = list(itertools.chain.from_iterable(words))
        known = len(self._word_ids)
        ids = np.fromiter(map(self._word_ids.__getitem__, flat), dtype=np.int64, count=len(flat))
        if len(self._word_ids) > known:
            self._learn(flat, ids, known)
        terms = self._word_terms[ids]
        owner = np.repeat(np.arange(len(texts)), [len(text_words) for text_words in words])
        kept = terms >= 0
        return terms[kept], np.bincount(owner[kept], minlength=len(texts))

    def _learn(self, flat: list[str], ids: np.ndarray, known: int) -> None:
        """Give the words with ids from ``known`` on their terms (-1: dropped)."""
        new = np.flatnonzero(ids >= known)
        _, first = np.unique(ids[new], return_index=True)  # ascending ids: known, known + 1, ...
        words = [flat[position] for position in new[first]]
        terms = self.analyzer.normalize(words)
        vocab = self.vocab
        term_ids = [-1 if term is None else vocab.setdefault(term, len(vocab)) for term in terms]
        self._word_terms = np.concatenate([self._word_terms, np.asarray(term_ids, np.int32)])


class PostingSpill:
    """(term, row, frequency) postings, buffered then appended to per-bucket files by term."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._buffered: list[np.ndarray] = []
        self._size = 0
        self.spilled = False

    def add(self, postings: np.ndarray) -> None:
        self._buffered.append(postings)
        self._size += len(postings)
        if self._size >= SPILL_POSTINGS:
            self._spill()

    def _spill(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        postings = np.concatenate(self._buffered)
        self._buffered, self._size = [], 0
        buckets = (postings["term"] % BUCKETS).astype(np.uint8)
        postings = postings[np.argsort(buckets, kind="stable")]  # a radix sort on uint8
        bounds = np.concatenate([[0], np.cumsum(np.bincount(buckets, minlength=BUCKETS))])
        for bucket in range(BUCKETS):
            part = postings[bounds[bucket] : bounds[bucket + 1]]
            if len(part):
                with open(self.folder / f"{bucket:02d}.bin", "ab") as handle:
                    handle.write(part.tobytes())
        self.spilled = True

    def groups(self) -> Iterator[np.ndarray]:
        """All postings, in groups whose terms no other group has: one group if nothing was
        spilled, else one bucket file at a time (rows ascending within each)."""
        if not self.spilled:
            yield np.concatenate(self._buffered) if self._buffered else np.zeros(0, POSTING)
            self._buffered = []
            return
        if self._buffered:
            self._spill()
        for bucket in range(BUCKETS):
            path = self.folder / f"{bucket:02d}.bin"
            if path.exists():
                yield np.fromfile(path, dtype=POSTING)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class SegmentWriter:
    """Analyses passage texts (rows ``first_row`` on) into one segment written by
    :meth:`finish`, streaming (see the module's text)."""

    def __init__(self, folder: Path, analyzer: Analyzer, first_row: int = 0) -> None:
        self.folder, self.analyzer, self.first_row = folder, analyzer, first_row
        self.terms = TermIds(analyzer)
        self.spill = PostingSpill(folder.parent / f".{folder.name}{SPILL_FOLDER}")
        self._lengths: list[np.ndarray] = []
        self._frequencies = np.zeros(0, dtype=np.int64)
        self.rows = 0

    def add(self, texts: Sequence[str]) -> None:
        """Analyse the next rows' texts, a few at a time: neither their words nor their
        tokens pile up."""
        for first in range(0, len(texts), ANALYSIS_BATCH):
            self._add(texts[first : first + ANALYSIS_BATCH])

    def _add(self, texts: Sequence[str]) -> None:
        terms, lengths = self.terms.map(texts)
        owner = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        keys, counts = np.unique((owner << 32) | terms, return_counts=True)
        postings = np.empty(len(keys), POSTING)
        postings["term"] = keys & 0xFFFFFFFF
        postings["row"] = (keys >> 32) + self.rows + self.first_row
        postings["tf"] = counts
        self.spill.add(postings)
        self._lengths.append(lengths.astype(np.int32))
        grown = len(self.terms.vocab) - len(self._frequencies)
        if grown > 0:
            self._frequencies = np.concatenate([self._frequencies, np.zeros(grown, np.int64)])
        self._frequencies += np.bincount(postings["term"], minlength=len(self._frequencies))
        self.rows += len(texts)

    @property
    def postings(self) -> int:
        return int(self._frequencies.sum())

    def finish(self) -> int:
        """Write the segment's files; returns its vocabulary's size."""
        try:
            return self._write()
        finally:
            self.spill.remove()

    def _write(self) -> int:
        frequencies = self._frequencies
        order = np.lexsort((np.arange(len(frequencies)), np.arange(len(frequencies)) % BUCKETS))
        new_ids = np.empty(len(order), np.int64)
        new_ids[order] = np.arange(len(order))
        total = int(frequencies.sum())
        self.folder.mkdir(parents=True, exist_ok=True)
        rows = fs.NpyAppender(self.folder / ROWS, np.int32 if self._fits_int32 else np.int64)
        tf = fs.NpyAppender(self.folder / TF, np.uint16)
        for group in self.spill.groups():
            group = group[np.argsort(new_ids[group["term"]], kind="stable")]
            rows.append(group["row"])
            tf.append(np.minimum(group["tf"], TF_MAX))
        rows.close(expected=total)
        tf.close(expected=total)
        indptr = np.concatenate([[0], np.cumsum(frequencies[order])]).astype(np.int64)
        fs.save_array(self.folder / INDPTR, indptr)
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int32)
        fs.save_array(self.folder / LENGTHS, lengths)
        terms = {term: int(new_ids[old]) for term, old in self.terms.vocab.items()}
        fs.write_text(self.folder / TERMS, json.dumps(terms, ensure_ascii=False))
        described = {"first_row": self.first_row, "rows": self.rows, "postings": total}
        fs.write_text(self.folder / SEGMENT, json.dumps({**described, "terms": len(terms)}))
        return len(terms)

    @property
    def _fits_int32(self) -> bool:
        return self.first_row + self.rows < 2**31


@dataclass(frozen=True)
class Segment:
    """One segment opened: its terms, postings (memory-mapped) and rows."""

    folder: Path
    terms: dict[str, int]
    indptr: np.ndarray
    rows: np.ndarray
    tf: np.ndarray
    lengths: np.ndarray
    first_row: int

    @classmethod
    def open(cls, folder: Path) -> Segment:
        try:
            described = json.loads((folder / SEGMENT).read_text(encoding="utf-8"))
            terms = json.loads((folder / TERMS).read_text(encoding="utf-8"))
            arrays = [np.load(folder / name, mmap_mode="r") for name in (INDPTR, ROWS, TF)]
            lengths = np.load(folder / LENGTHS)
            first = int(described["first_row"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexFormatError(
                f"{folder}: a BM25 segment missing or unreadable ({exc})"
            ) from exc
        return cls(folder, terms, *arrays, lengths, first)

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The rows holding ``term`` and how often, or None."""
        column = self.terms.get(term)
        if column is None:
            return None
        start, end = int(self.indptr[column]), int(self.indptr[column + 1])
        return self.rows[start:end], self.tf[start:end]


def segment_folders(folder: Path) -> list[Path]:
    """A BM25 folder's segments, in row order (a merged segment takes the place of its
    parts, whatever its name)."""
    root = folder / SEGMENTS
    found = [path for path in root.iterdir() if path.is_dir()] if root.is_dir() else []
    return sorted(found, key=first_row)


def first_row(segment: Path) -> int:
    return row_span(segment)[0]


def row_span(segment: Path) -> tuple[int, int]:
    """A segment's first row and how many rows it holds (its description alone read)."""
    try:
        described = json.loads((segment / SEGMENT).read_text(encoding="utf-8"))
        return int(described["first_row"]), int(described["rows"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexFormatError(f"{segment}: a BM25 segment missing or unreadable ({exc})") from exc


def next_segment(folder: Path) -> Path:
    """A new segment's folder in ``folder`` (named after the highest yet)."""
    root = folder / SEGMENTS
    names = [int(path.name) for path in root.iterdir() if path.is_dir()] if root.is_dir() else []
    return root / f"{max(names, default=-1) + 1:05d}"


class SegmentSearch:
    """Every segment of a BM25 folder, searched with the statistics of the live rows (not
    ``deleted``) now; the method and parameters of ``settings``."""

    def __init__(self, folder: Path, settings: BM25Settings, deleted: np.ndarray | None) -> None:
        self.settings = settings
        self.segments = [Segment.open(path) for path in segment_folders(folder)]
        lengths = np.concatenate([segment.lengths for segment in self.segments])
        deleted = padded(deleted, len(lengths))
        if len(lengths) != len(deleted):
            raise IndexFormatError(
                f"{folder}: the segments hold {len(lengths):,} rows, the collection "
                f"{len(deleted):,}"
            )
        self.size = len(lengths)
        self.live = ~np.asarray(deleted, bool)
        self.documents = int(self.live.sum())
        self.deletions = self.documents < self.size
        self.absent = np.float32(
            scoring.absent_weight(settings.method, settings.k1, settings.delta)
        )
        self._cache: OrderedDict[str, TermScores] = OrderedDict()
        self._cached_bytes = 0
        self._cache_lock = threading.Lock()
        self._local = threading.local()
        average = float(lengths[self.live].mean()) if self.documents else 1.0
        b = settings.b
        self.norm = (1.0 - b + b * lengths / max(average, 1e-9)).astype(np.float32)

    def top(
        self, tokens: Sequence[str], k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best ``k`` rows that score above 0 for one analysed query (among the
        ``allowed``, never deleted ones), best first, ties by row; and their scores.

        Scores are added up in a vector of every row kept by the searcher (per thread) and
        read back, then cleared, at the postings' rows alone: a query costs what its
        postings hold, not what the index does."""
        mask = allowed if allowed is not None else (self.live if self.deletions else None)
        terms = [term for token in tokens if (term := self.term(token)) is not None]
        if not terms:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if self.absent:  # BM25L, BM25+: a passage lacking a term scores for it too
            return self._top_everywhere(terms, k, mask)
        scores = self._scores()
        for term in terms:
            weights = term.weights if mask is None else term.weights * mask[term.rows]
            np.add.at(scores, term.rows, weights)
        postings = sum(len(term.rows) for term in terms)
        if postings * 2 > self.size:  # most rows touched: rank the whole vector
            found = best(None, scores, k)
            scores.fill(0)
            return found
        rows = np.concatenate([term.rows for term in terms])
        found = scores[rows]
        scores[rows] = 0
        reach = min(len(rows), k * len(terms))  # a row comes back once a term it holds
        if len(rows) > reach:
            chosen = np.argpartition(-found, reach - 1)[:reach]
            rows, found = rows[chosen], found[chosen]
        rows, first = np.unique(rows, return_index=True)
        return best(rows, found[first], k)

    def _top_everywhere(
        self, terms: Sequence[TermScores], k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = np.zeros(self.size, np.float32)
        for term in terms:
            weights = term.weights if mask is None else term.weights * mask[term.rows]
            scores[term.rows] += weights
        constant = np.float32(sum(term.idf for term in terms) * self.absent)
        scores += constant * (np.float32(1) if mask is None else mask)
        return best(None, scores, k)

    def _scores(self) -> np.ndarray:
        """This thread's vector of a score a row, all 0 between queries."""
        scores = getattr(self._local, "scores", None)
        if scores is None:
            scores = self._local.scores = np.zeros(self.size, np.float32)
        return scores

    def term(self, token: str) -> TermScores | None:
        """A term's rows and what each scores for it (the live rows' statistics), or None
        when no live passage holds it. A term of many postings is kept (:data:`CACHED_BYTES`
        at most): common terms come back query after query."""
        with self._cache_lock:
            cached = self._cache.get(token)
            if cached is not None:
                self._cache.move_to_end(token)
                return cached
        found = [hit for segment in self.segments if (hit := segment.postings(token))]
        if not found:
            return None
        rows = np.concatenate([np.asarray(rows) for rows, _ in found])
        tf = np.concatenate([np.asarray(tf) for _, tf in found])
        df = np.count_nonzero(self.live[rows]) if self.deletions else len(rows)
        if not df:
            return None
        settings = self.settings
        idf = float(scoring.idf(settings.method, np.asarray([df]), self.documents)[0])
        weight = scoring.weight_normed(
            settings.method, tf.astype(np.float32), self.norm[rows], settings.k1, settings.delta
        )
        scores = TermScores(rows, ((weight - self.absent) * np.float32(idf)), idf)
        if len(rows) >= CACHED_POSTINGS:
            with self._cache_lock:
                if token not in self._cache:
                    self._cache[token] = scores
                    self._cached_bytes += scores.bytes
                while self._cached_bytes > CACHED_BYTES and self._cache:
                    _, dropped = self._cache.popitem(last=False)
                    self._cached_bytes -= dropped.bytes
        return scores


@dataclass(frozen=True)
class TermScores:
    """A term's rows and each one's score for it (less a lacking passage's), its idf."""

    rows: np.ndarray
    weights: np.ndarray
    idf: float

    @property
    def bytes(self) -> int:
        return self.rows.nbytes + self.weights.nbytes


def best(rows: np.ndarray | None, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of ``rows`` (None: every row, ``scores`` a vector of them all) that
    score above 0, by score, ties by row."""
    if len(scores) > k:
        chosen = np.argpartition(-scores, k - 1)[:k]
        rows, scores = (chosen if rows is None else rows[chosen]), scores[chosen]
    elif rows is None:
        rows = np.arange(len(scores))
    positive = scores > 0
    rows, scores = rows[positive], scores[positive]
    order = np.lexsort((rows, -scores))
    return rows[order].astype(np.int64), scores[order]


def padded(deleted: np.ndarray | None, rows: int) -> np.ndarray:
    """The collection's deleted flags for ``rows`` rows: rows added after the flags were
    last written have none (they are not deleted)."""
    flags = np.zeros(0, bool) if deleted is None else np.asarray(deleted, bool)
    if len(flags) < rows:
        flags = np.concatenate([flags, np.zeros(rows - len(flags), bool)])
    return flags


def merge(
    folder: Path, parts: Sequence[Path], deleted: np.ndarray | None, drop_deleted: bool
) -> Path:
    """Write the segments ``parts`` (consecutive rows) of a BM25 folder as one new segment,
    streaming a term at a time (memory: the vocabularies), the postings of deleted rows left
    out (``drop_deleted``); the parts are removed (in an update's copy only the links go: the
    index's own files stay). Returns the new segment's folder."""
    segments = [Segment.open(path) for path in parts]
    target = next_segment(folder)
    target.mkdir(parents=True)
    first = segments[0].first_row
    lengths = np.concatenate([segment.lengths for segment in segments])
    deleted = padded(deleted, first + len(lengths))
    wide = first + len(lengths) >= 2**31
    rows_out = fs.NpyAppender(target / ROWS, np.int64 if wide else np.int32)
    tf_out = fs.NpyAppender(target / TF, np.uint16)
    terms: dict[str, int] = {}
    counts: list[int] = []
    for term in dict.fromkeys(itertools.chain.from_iterable(s.terms for s in segments)):
        found = [hit for segment in segments if (hit := segment.postings(term))]
        rows = np.concatenate([np.asarray(rows) for rows, _ in found])
        tf = np.concatenate([np.asarray(tf) for _, tf in found])
        if drop_deleted:
            keep = ~deleted[rows]
            rows, tf = rows[keep], tf[keep]
        if len(rows):
            terms[term] = len(terms)
            counts.append(len(rows))
            rows_out.append(rows)
            tf_out.append(tf)
    total = int(sum(counts))
    rows_out.close(expected=total)
    tf_out.close(expected=total)
    fs.save_array(target / INDPTR, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
    fs.save_array(target / LENGTHS, lengths)
    fs.write_text(target / TERMS, json.dumps(terms, ensure_ascii=False))
    described = {"first_row": first, "rows": len(lengths), "postings": total}
    fs.write_text(target / SEGMENT, json.dumps({**described, "terms": len(terms)}))
    for path in parts:
        shutil.rmtree(path)
    return target
