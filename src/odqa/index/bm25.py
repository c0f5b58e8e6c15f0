"""The BM25 kind: passages analysed and scored by bm25s (sparse matrices, memory-mapped)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import bm25s
import numpy as np

from odqa.corpus import Document, indexable_text
from odqa.index.analysis import Analyzer, analyzer_from_config, make_analyzer
from odqa.index.collection import Collection
from odqa.index.kind import CorpusPass, PassageBatch, Runtime, SearchSettings, Settings

if TYPE_CHECKING:
    from odqa.index.options import BuildOptions

FOLDER = "bm25"
REBUILD_BATCH = 4096
ANALYSIS_BATCH = 1024


@dataclass(frozen=True)
class BM25Settings:
    """Pyserini's BEIR settings by default (Lucene BM25, k1 0.9, b 0.4)."""

    method: str = "lucene"
    k1: float = 0.9
    b: float = 0.4


class BM25Builder:
    """Collects analysed passages, mapping tokens to ids as they stream in."""

    def __init__(self, settings: BM25Settings, language: str = "auto") -> None:
        self.settings = settings
        self.language = language
        self.analyzer: Analyzer | None = None
        self.folder: Path | None = None
        self.vocab: dict[str, int] = {}
        self.token_ids: list[list[int]] = []

    def tokenizer(self) -> None:
        return None

    def start(self, folder: Path, first: Sequence[Document], corpus: CorpusPass) -> None:
        """Choose the analyzer from the first documents (language ``auto``)."""
        self.folder = folder / FOLDER
        self.analyzer = make_analyzer(self.language, [f"{d.title} {d.text}" for d in first])

    def add(self, batch: PassageBatch) -> None:
        """Analyse a few passages at a time: their token strings never pile up."""
        texts = batch.texts
        for first in range(0, len(texts), ANALYSIS_BATCH):
            for tokens in self.analyzer.tokenize(texts[first : first + ANALYSIS_BATCH]):
                self.token_ids.append(
                    [self.vocab.setdefault(token, len(self.vocab)) for token in tokens]
                )

    def finish(self) -> Settings:
        model = bm25s.BM25(**asdict(self.settings))
        model.index(bm25s.tokenization.Tokenized(self.token_ids, self.vocab), show_progress=False)
        model.save(str(self.folder), show_progress=False)
        return {
            "library": "bm25s",
            **asdict(self.settings),
            "analyzer": self.analyzer.config(),
            "vocabulary": len(self.vocab),
        }


class BM25Index:
    """A saved bm25s index: top-k passage rows for analysed queries."""

    returns_deleted = True

    def __init__(self, folder: Path, analyzer: Analyzer | None = None) -> None:
        self.model = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
        self.size = int(self.model.scores["num_docs"])
        self.analyzer = analyzer

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of query texts, analysed as the corpus was."""
        return self.search_tokens(self.analyzer.tokenize(queries), k)

    def search_tokens(
        self, queries: Sequence[Sequence[str]], k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores, shape ``(len(queries), min(k, size))``; row -1 marks no match.

        A query none of whose tokens is in the vocabulary matches nothing.
        """
        k = min(k, self.size)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.zeros((len(queries), k), dtype=np.float32)
        vocab = self.model.vocab_dict
        known = [i for i, query in enumerate(queries) if any(t in vocab for t in query)]
        if known and k:
            found, found_scores = self.model.retrieve(
                [list(queries[i]) for i in known], k=k, show_progress=False
            )
            matched = found_scores > 0
            rows[known] = np.where(matched, found, -1)
            scores[known] = np.where(matched, found_scores, 0.0)
        return rows, scores


class BM25Kind:
    """Lexical retrieval with the analyzer recorded in the index."""

    name = "bm25"
    folder = FOLDER
    reranks = False

    def builder(self, options: BuildOptions) -> BM25Builder:
        return BM25Builder(options.bm25, options.language)

    def add(self, index: Path, settings: Settings, batch: PassageBatch, runtime: Runtime) -> dict:
        """Re-index every stored passage (cheap next to neural encoding); deleted ones stay
        and are skipped at search time."""
        builder = BM25Builder(BM25Settings(settings["method"], settings["k1"], settings["b"]))
        builder.analyzer = analyzer_from_config(settings["analyzer"])
        builder.folder = index / FOLDER
        collection = Collection(index)
        rows = range(collection.num_passages)
        for first in range(0, len(rows), REBUILD_BATCH):
            texts = [
                indexable_text(collection.passage(r)) for r in rows[first : first + REBUILD_BATCH]
            ]
            builder.add(PassageBatch((), (), texts))
        collection.close()
        shutil.rmtree(builder.folder)
        settings.update(builder.finish())
        return {}

    def delete(self, index: Path, settings: Settings, rows: np.ndarray) -> None:
        """Nothing to change: deleted rows are skipped at search time."""

    def open(self, index: Path, settings: Settings, options: SearchSettings) -> BM25Index:
        return BM25Index(index / FOLDER, analyzer_from_config(settings["analyzer"]))
