"""The BM25 kind: passages analysed, their postings kept in segments
(:mod:`odqa.index.bm25_store`) and scored when searched, with the statistics of the live
collection, as a build of it would score them.

An addition writes one segment of the new passages; a deletion changes no BM25 file (the
collection's deleted flags take the rows out of the statistics and the results). What an
update costs grows with the change, not with the index: when more than :data:`MAX_SEGMENTS`
segments pile up, those after the first are merged into one; a segment of which more than
:data:`DELETED_SHARE` of the rows are deleted is written again without them. Both are
bounded by the segments they touch, and the update's report says when they ran.

Indexes written before segments (bm25s's eager matrix, ``library: bm25s`` in the manifest)
are searched by bm25s as they were; their first addition writes their postings as a segment
(it re-analyses every stored passage once, and says so).
"""

from __future__ import annotations

import shutil
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np

from odqa.corpus import indexable_text
from odqa.encode import EncodedBatch
from odqa.errors import OdqaError
from odqa.index import bm25_scoring as scoring
from odqa.index import bm25_store as store
from odqa.index.analysis import Analyzer, analyzer_from_config, make_analyzer
from odqa.index.collection import Collection, deleted_flags
from odqa.index.identify import document_texts, identify_collection
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
from odqa.index.options import BuildOptions
from odqa.index.settings import BM25Settings, KindSettings

FOLDER = "bm25"
LIBRARY = "odqa-segments"
LEGACY = "bm25s"
REBUILD_BATCH = 4096
MAX_SEGMENTS = 8
DELETED_SHARE = 0.2


class BM25Builder(KindBuilder):
    """Streams analysed passages into the build's one segment."""

    def __init__(self, settings: BM25Settings, language: str = "auto") -> None:
        scoring.check_method(settings.method)
        self.settings, self.language = settings, language
        self.writer: store.SegmentWriter | None = None

    def start(self, start: BuildStart) -> None:
        """Choose the analyzer: the collection's language (identified from the first documents
        when ``auto``). Analysis stays with the build (never on Ray workers): it is cheap, and
        its vocabulary is one."""
        language = self.language
        if language == "auto":
            language = identify_collection(document_texts(list(start.first))).analysis
        analyzer = make_analyzer(language)
        self.writer = store.SegmentWriter(store.next_segment(start.folder / FOLDER), analyzer)

    def add(self, batch: EncodedBatch) -> None:
        self.writer.add(batch.texts)

    def footprint(self, passages: int) -> Footprint:
        """Rows and term frequencies (6 bytes a posting); memory: the spill buffer, sorted
        once, the passage lengths and the vocabulary (seen so far, doubled)."""
        writer = self.writer
        postings = int(writer.postings / max(1, writer.rows) * passages)
        buffer = min(postings, store.SPILL_POSTINGS) * store.POSTING.itemsize * 3
        largest_group = postings if postings < store.SPILL_POSTINGS else postings // store.BUCKETS
        vocabulary = len(writer.terms.vocab)
        memory = buffer + largest_group * 40 + 8 * passages + 400 * vocabulary
        return Footprint(disk=postings * 6 + 4 * passages + 8 * vocabulary, memory=memory)

    def finish(self) -> Record:
        """Write the segment; returns the manifest's record."""
        vocabulary = self.writer.finish()
        return {
            "library": LIBRARY,
            **self.settings.record(),
            "analyzer": self.writer.analyzer.config(),
            "vocabulary": vocabulary,
        }


class AnalysedSearch(RowSearcher):
    """A BM25 searcher: query texts are analysed as the corpus was, then searched as tokens
    (``search_tokens``, each subclass's own)."""

    analyzer: Analyzer

    def search(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of query texts, analysed as the corpus was."""
        return self.search_tokens(self.analyzer.tokenize(queries), k, allowed)

    @abstractmethod
    def search_tokens(
        self, queries: Sequence[Sequence[str]], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of analysed queries."""


class BM25Search(AnalysedSearch):
    """BM25 over the segments of an index, scored with the live collection's statistics."""

    def __init__(self, folder: Path, analyzer: Analyzer, settings: BM25Settings, deleted) -> None:
        self.analyzer = analyzer
        self.segments = store.SegmentSearch(folder, settings, deleted)
        self.size = self.segments.size

    def search_tokens(
        self, queries: Sequence[Sequence[str]], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores, shape ``(len(queries), min(k, size))``; row -1 marks no match (a
        passage matches when it scores above 0: it holds a query term that scores)."""
        k = min(k, self.size)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.zeros((len(queries), k), dtype=np.float32)
        for number, tokens in enumerate(queries):
            best, best_scores = self.segments.top(tokens, k, allowed) if k else ([], [])
            rows[number, : len(best)] = best
            scores[number, : len(best)] = best_scores
        return rows, scores


class BM25Index(AnalysedSearch):
    """An index written before segments: bm25s's eager matrix, searched by bm25s."""

    def __init__(self, folder: Path, analyzer: Analyzer | None = None) -> None:
        self.model = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
        self.size = int(self.model.scores["num_docs"])
        self.analyzer = analyzer

    def search_tokens(
        self, queries: Sequence[Sequence[str]], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores, shape ``(len(queries), min(k, size))``; row -1 marks no match.
        Rows not ``allowed`` score 0 (bm25s's weight mask), so never match."""
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
    searcher_class = BM25Search

    def builder(self, settings: KindSettings, options: BuildOptions) -> BM25Builder:
        return BM25Builder(settings, options.language)

    def add(
        self, index: Path, record: Record, batch: EncodedBatch, runtime: Runtime, first_row: int
    ) -> dict:
        """One segment of the new passages (rows ``first_row`` on); too many segments are
        merged."""
        analyzer = analyzer_from_config(record["analyzer"])
        report: dict[str, int | bool] = {}
        if record.get("library") == LEGACY:
            self._convert(index, record, analyzer, first_row)
            report["bm25_converted"] = True
        writer = store.SegmentWriter(store.next_segment(index / FOLDER), analyzer, first_row)
        writer.add(batch.texts)
        writer.finish()
        segments = store.segment_folders(index / FOLDER)
        if len(segments) > MAX_SEGMENTS:
            deleted = deleted_flags(index)
            store.merge(index / FOLDER, segments[1:], deleted, drop_deleted=True)
            report["bm25_merged_segments"] = len(segments) - 1
        return report

    def _convert(self, index: Path, record: Record, analyzer: Analyzer, rows: int) -> None:
        """An index of bm25s's eager matrix, its postings (of its first ``rows`` passages,
        those before the ones being added) written as one segment: every stored passage
        analysed again, once."""
        collection = Collection(index)
        try:
            shutil.rmtree(index / FOLDER)
            writer = store.SegmentWriter(store.next_segment(index / FOLDER), analyzer)
            for first in range(0, rows, REBUILD_BATCH):
                part = range(first, min(first + REBUILD_BATCH, rows))
                writer.add([indexable_text(collection.passage(row)) for row in part])
            record["vocabulary"] = writer.finish()
        finally:
            collection.close()
        record["library"] = LIBRARY

    def delete(self, index: Path, record: Record, rows: np.ndarray) -> dict:
        """No BM25 file changes, but a segment of which more than :data:`DELETED_SHARE` of
        the rows are deleted is written again without them (bounded by that segment)."""
        deleted = deleted_flags(index)
        if record.get("library") == LEGACY or deleted is None:
            return {}
        rewritten = 0
        for segment in store.segment_folders(index / FOLDER):
            first, count = store.row_span(segment)
            span = deleted[first : first + count]
            if len(span) and span.mean() > DELETED_SHARE:
                store.merge(index / FOLDER, [segment], deleted, drop_deleted=True)
                rewritten += 1
        return {"bm25_rewritten_segments": rewritten} if rewritten else {}

    def compact(self, index: Path, record: Record) -> dict:
        """Every segment merged into one without the deleted rows' postings."""
        if record.get("library") == LEGACY:
            raise OdqaError(f"{index}: its BM25 predates segments; add to it or rebuild it first")
        segments = store.segment_folders(index / FOLDER)
        store.merge(index / FOLDER, segments, deleted_flags(index), drop_deleted=True)
        return {"bm25_segments_merged": len(segments)}

    def compact_bytes(self, index: Path, record: Record) -> int:
        """The BM25 folder's size: it is written again whole."""
        return sum(path.stat().st_size for path in (index / FOLDER).rglob("*") if path.is_file())

    def open(self, index: Path, record: Record, options: SearchSettings) -> RowSearcher:
        analyzer = analyzer_from_config(record["analyzer"])
        if record.get("library") == LEGACY:
            return BM25Index(index / FOLDER, analyzer)
        settings = BM25Settings.recorded(record)
        return BM25Search(index / FOLDER, analyzer, settings, deleted_flags(index))
