"""The BM25 kind: passages analysed, their postings streamed to disk, scored into bm25s's
memory-mapped sparse-matrix format, and searched by bm25s.

A build never holds the corpus's tokens: each batch of passages becomes (term, passage,
frequency) postings, buffered up to :data:`SPILL_POSTINGS` and then appended to one of
:data:`BUCKETS` files by term; at the end each bucket is sorted and scored in turn and
appended to the matrix, so memory is bounded by one bucket, the vocabulary and the passage
lengths, whatever the corpus's size.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import bm25s
import numpy as np

import odqa.fs as fs
from odqa.corpus import indexable_text
from odqa.encode import EncodedBatch
from odqa.index import bm25_scoring as scoring
from odqa.index.analysis import Analyzer, analyzer_from_config, make_analyzer
from odqa.index.collection import Collection
from odqa.index.kind import (
    BuildStart,
    Footprint,
    KindBuilder,
    Record,
    RetrieverKind,
    RowSearcher,
    Runtime,
    SearchSettings,
)
from odqa.index.settings import BM25Settings, KindSettings

if TYPE_CHECKING:
    from odqa.index.options import BuildOptions

FOLDER = "bm25"
REBUILD_BATCH = 4096
ANALYSIS_BATCH = 1024
BUCKETS = 64
SPILL_POSTINGS = 8_000_000
POSTING = np.dtype([("term", "<i4"), ("row", "<i4"), ("tf", "<u4")])
SPILL_FOLDER = ".postings"
# bm25s's file names, so that bm25s.BM25.load(mmap=True) opens what we write
DATA, INDICES, INDPTR = "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy"
VOCAB, PARAMS, NONOCCURRENCE = (
    "vocab.index.json",
    "params.index.json",
    "nonoccurrence_array.index.npy",
)
METHODS_WITH_NONOCCURRENCE = scoring.WITH_NONOCCURRENCE


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


class BM25Builder(KindBuilder):
    """Streams analysed passages into postings; ``finish`` scores them into bm25s's files."""

    def __init__(self, settings: BM25Settings, language: str = "auto") -> None:
        scoring.check_method(settings.method)
        self.settings = settings
        self.language = language
        self.analyzer: Analyzer | None = None
        self.folder: Path | None = None
        self.terms: TermIds | None = None
        self.spill: PostingSpill | None = None
        self._lengths: list[np.ndarray] = []
        self._frequencies = np.zeros(0, dtype=np.int64)
        self.rows = 0

    def start(self, start: BuildStart) -> None:
        """Choose the analyzer from the first documents (language ``auto``). Analysis stays
        with the build (never on Ray workers): it is cheap, and its vocabulary is one."""
        texts = [f"{d.title} {d.text}" for d in start.first]
        self.open(start.folder / FOLDER, make_analyzer(self.language, texts))

    def open(self, folder: Path, analyzer: Analyzer) -> None:
        """Start writing into ``folder`` with ``analyzer``."""
        self.folder, self.analyzer = folder, analyzer
        self.terms = TermIds(analyzer)
        self.spill = PostingSpill(folder / SPILL_FOLDER)

    def add(self, batch: EncodedBatch) -> None:
        """Analyse a few passages at a time: neither their words nor their tokens pile up."""
        self.add_texts(batch.texts)

    def add_texts(self, texts: Sequence[str]) -> None:
        """Analyse passage texts (the next rows), a few at a time."""
        for first in range(0, len(texts), ANALYSIS_BATCH):
            self._add_texts(texts[first : first + ANALYSIS_BATCH])

    def _add_texts(self, texts: Sequence[str]) -> None:
        terms, lengths = self.terms.map(texts)
        owner = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        keys, counts = np.unique((owner << 32) | terms, return_counts=True)
        postings = np.empty(len(keys), POSTING)
        postings["term"] = keys & 0xFFFFFFFF
        postings["row"] = (keys >> 32) + self.rows
        postings["tf"] = counts
        self.spill.add(postings)
        self._lengths.append(lengths.astype(np.int32))
        self._frequencies = _grown(self._frequencies, len(self.terms.vocab))
        self._frequencies += np.bincount(postings["term"], minlength=len(self._frequencies))
        self.rows += len(texts)

    def footprint(self, passages: int) -> Footprint:
        """Data and indices (8 bytes a posting); memory: the spill buffer, sorted once, the
        passage lengths and the vocabulary (seen so far, doubled)."""
        per_passage = int(self._frequencies.sum()) / max(1, self.rows)
        postings = int(per_passage * passages)
        buffer = min(postings, SPILL_POSTINGS) * POSTING.itemsize * 3
        largest_group = postings if postings < SPILL_POSTINGS else postings // BUCKETS
        memory = buffer + largest_group * 40 + 8 * passages + 400 * len(self.terms.vocab)
        return Footprint(disk=postings * 8 + 8 * len(self.terms.vocab), memory=memory)

    def finish(self) -> Record:
        """Score every posting and write bm25s's files; returns the manifest's record."""
        try:
            self._write()
        finally:
            self.spill.remove()
        return {
            "library": "bm25s",
            **self.settings.record(),
            "analyzer": self.analyzer.config(),
            "vocabulary": len(self.terms.vocab),
        }

    def _write(self) -> None:
        settings = self.settings
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int32)
        average = float(lengths.mean()) if len(lengths) else 0.0
        frequencies = self._frequencies
        order = np.lexsort((np.arange(len(frequencies)), np.arange(len(frequencies)) % BUCKETS))
        new_ids = np.empty(len(order), np.int64)
        new_ids[order] = np.arange(len(order))
        idf = scoring.idf(settings.method, frequencies, self.rows)
        nonoccurrence = scoring.nonoccurrence(
            settings.method, frequencies[order], self.rows, settings.k1, settings.b, settings.delta
        )
        if nonoccurrence is not None:  # as stored: a search adds back exactly what was taken
            nonoccurrence = nonoccurrence.astype(np.float32).astype(np.float64)
        total = int(frequencies.sum())
        self.folder.mkdir(parents=True, exist_ok=True)
        data = fs.NpyAppender(self.folder / DATA, np.float32)
        indices = fs.NpyAppender(self.folder / INDICES, np.int32)
        for group in self.spill.groups():
            group = group[np.argsort(new_ids[group["term"]], kind="stable")]
            terms, rows = group["term"], group["row"]
            scores = idf[terms] * scoring.weight(
                settings.method,
                group["tf"],
                lengths[rows],
                average,
                settings.k1,
                settings.b,
                settings.delta,
            )
            if nonoccurrence is not None:
                scores -= nonoccurrence[new_ids[terms]]
            data.append(scores)
            indices.append(rows)
        data.close(expected=total)
        indices.close(expected=total)
        indptr = np.concatenate([[0], np.cumsum(frequencies[order])])
        fs.save_array(self.folder / INDPTR, indptr.astype(np.int32 if total < 2**31 else np.int64))
        if nonoccurrence is not None:
            fs.save_array(self.folder / NONOCCURRENCE, nonoccurrence.astype(np.float32))
        vocab = {term: int(new_ids[old]) for term, old in self.terms.vocab.items()}
        fs.write_text(self.folder / VOCAB, json.dumps(vocab, ensure_ascii=False))
        params = {
            "k1": settings.k1,
            "b": settings.b,
            "delta": settings.delta,
            "method": settings.method,
            "idf_method": settings.method,
            "dtype": "float32",
            "int_dtype": "int32",
            "num_docs": self.rows,
            "version": bm25s.__version__,
            "backend": "numpy",
        }
        fs.write_text(self.folder / PARAMS, json.dumps(params, indent=4))


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` extended with zeros to ``size``."""
    return (
        np.concatenate([array, np.zeros(size - len(array), array.dtype)])
        if size > len(array)
        else array
    )


class BM25Index(RowSearcher):
    """A saved bm25s index: top-k passage rows for analysed queries."""

    returns_deleted = True

    def __init__(self, folder: Path, analyzer: Analyzer | None = None) -> None:
        self.model = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
        self.size = int(self.model.scores["num_docs"])
        self.analyzer = analyzer

    def search(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of query texts, analysed as the corpus was."""
        return self.search_tokens(self.analyzer.tokenize(queries), k, allowed)

    def search_tokens(
        self, queries: Sequence[Sequence[str]], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores, shape ``(len(queries), min(k, size))``; row -1 marks no match.

        A query none of whose tokens is in the vocabulary matches nothing. Rows not
        ``allowed`` score 0 (bm25s's weight mask), so never match.
        """
        k = min(k, self.size)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.zeros((len(queries), k), dtype=np.float32)
        vocab = self.model.vocab_dict
        known = [i for i, query in enumerate(queries) if any(t in vocab for t in query)]
        if known and k:
            mask = None if allowed is None else np.asarray(allowed, np.float32)
            found, found_scores = self.model.retrieve(
                [list(queries[i]) for i in known], k=k, show_progress=False, weight_mask=mask
            )
            matched = found_scores > 0
            rows[known] = np.where(matched, found, -1)
            scores[known] = np.where(matched, found_scores, 0.0)
        return rows, scores


class BM25Kind(RetrieverKind):
    """Lexical retrieval with the analyzer recorded in the index."""

    name = "bm25"
    folder = FOLDER
    settings = BM25Settings
    builder_class = BM25Builder
    searcher_class = BM25Index

    def builder(self, settings: KindSettings, options: BuildOptions) -> BM25Builder:
        return BM25Builder(settings, options.language)

    def add(self, index: Path, record: Record, batch: EncodedBatch, runtime: Runtime) -> dict:
        """Re-index every stored passage (cheap next to neural encoding); deleted ones stay
        and are skipped at search time."""
        builder = BM25Builder(BM25Settings.recorded(record))
        staged = index / f".{FOLDER}.rebuild"
        shutil.rmtree(staged, ignore_errors=True)
        builder.open(staged, analyzer_from_config(record["analyzer"]))
        collection = Collection(index)
        rows = range(collection.num_passages)
        for first in range(0, len(rows), REBUILD_BATCH):
            part = rows[first : first + REBUILD_BATCH]
            builder.add_texts([indexable_text(collection.passage(row)) for row in part])
        collection.close()
        record.update(builder.finish())
        shutil.rmtree(index / FOLDER)
        staged.rename(index / FOLDER)
        return {}

    def delete(self, index: Path, record: Record, rows: np.ndarray) -> None:
        """Nothing to change: deleted rows are skipped at search time."""

    def open(self, index: Path, record: Record, options: SearchSettings) -> BM25Index:
        return BM25Index(index / FOLDER, analyzer_from_config(record["analyzer"]))
