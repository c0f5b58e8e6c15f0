"""Each retriever kind's build settings: plain values, importable without the kinds' engines
(so that reading options never loads torch or faiss)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BM25Settings:
    """Pyserini's BEIR settings by default (Lucene BM25, k1 0.9, b 0.4)."""

    method: str = "lucene"
    k1: float = 0.9
    b: float = 0.4
    delta: float = 0.5
    """BM25L and BM25+ only."""


@dataclass(frozen=True)
class DenseSettings:
    """``index``: the faiss kind (flat, hnsw, ivf, ivfpq); ``dtype``: float32 or float16;
    ``refine`` (ivfpq only; 0: off): candidates rescored exactly from float16 vectors kept
    on disk (at least ``10*k``); ``nprobe``: inverted lists searched (ivf, ivfpq)."""

    index: str = "flat"
    dtype: str = "float32"
    refine: int = 100
    nprobe: int = 32

    def refined(self) -> int:
        """The refine depth this kind uses (0 but for ivfpq)."""
        return self.refine if self.index == "ivfpq" else 0


@dataclass(frozen=True)
class ColBERTSettings:
    """``model``: the checkpoint (Stanford, PyLate or plain; default: the build's model);
    ``nbits``: residual bits per dimension; ``sample``: documents that train the centroids."""

    model: str | None = None
    nbits: int = 2
    sample: int = 2048
