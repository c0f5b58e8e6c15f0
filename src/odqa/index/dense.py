"""The dense kind: bi-encoder vectors in faiss, exact inner product by default, IVF / HNSW /
IVF-PQ for large sets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np

import odqa.fs as fs
from odqa.corpus import Document
from odqa.errors import OdqaError
from odqa.index.kind import (
    CorpusPass,
    PassageBatch,
    Runtime,
    SearchSettings,
    Settings,
    check_same_model,
    wanted_model,
)
from odqa.models import DenseEncoder

if TYPE_CHECKING:
    from odqa.index.options import BuildOptions

FOLDER = "dense"
VECTORS_FILE = "vectors.tmp"

INDEX_FILE = "dense.faiss"
KINDS = ("flat", "hnsw", "ivf", "ivfpq")
DTYPES = ("float32", "float16")
ADD_BLOCK = 65_536
PQ_MIN_VECTORS = 1_000


def factory_string(kind: str, dtype: str, count: int, dim: int) -> str:
    """The faiss index factory string for a named kind, sized for ``count`` vectors.

    flat: exact search. hnsw: graph, fast and memory-hungry. ivf: ``4*sqrt(n)`` lists,
    approximate. ivfpq: ivf with product quantisation (dim/8 bytes per vector), smallest.
    ``float16`` stores vectors at half size (not applicable to ivfpq).
    """
    if kind not in KINDS:
        raise OdqaError(f"dense index kind must be one of {KINDS}, got {kind!r}")
    if dtype not in DTYPES:
        raise OdqaError(f"dense dtype must be one of {DTYPES}, got {dtype!r}")
    storage = "SQfp16" if dtype == "float16" else "Flat"
    nlist = max(1, min(int(4 * math.sqrt(count)), count // 39))
    if kind == "flat":
        return storage
    if kind == "hnsw":
        return "HNSW32" if dtype == "float32" else "HNSW32,SQfp16"
    if kind == "ivf":
        return f"IVF{nlist},{storage}"
    if count < PQ_MIN_VECTORS:
        raise OdqaError(
            f"ivfpq needs at least {PQ_MIN_VECTORS:,} passages to train its codebooks, the corpus "
            f"has {count:,}; use --dense-index flat (exact) for a collection this small"
        )
    subquantizers = max(1, dim // 8)
    while dim % subquantizers:
        subquantizers -= 1
    return f"IVF{nlist},PQ{subquantizers}"


def build_faiss(vectors: np.ndarray, factory: str, seed: int = 0) -> faiss.Index:
    """Train (when the kind needs it) and fill a faiss index from ``vectors``, by blocks."""
    count, dim = vectors.shape
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        sample = min(count, 256 * 1024)
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(count, size=sample, replace=False))
        index.train(np.ascontiguousarray(vectors[chosen], dtype=np.float32))
    for start in range(0, count, ADD_BLOCK):
        index.add(np.ascontiguousarray(vectors[start : start + ADD_BLOCK], dtype=np.float32))
    return index


class DenseIndex:
    """A saved faiss index whose ids are passage rows, searched with ``encoder``'s queries."""

    returns_deleted = True

    def __init__(
        self,
        folder: Path,
        encoder: DenseEncoder | None = None,
        nprobe: int = 32,
        ef_search: int = 128,
    ) -> None:
        self.encoder = encoder
        self.index = faiss.read_index(str(folder / INDEX_FILE))
        self.size = int(self.index.ntotal)
        if hasattr(self.index, "nprobe"):
            faiss.extract_index_ivf(self.index).nprobe = nprobe
        if hasattr(self.index, "hnsw"):
            self.index.hnsw.efSearch = max(ef_search, 16)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of query texts, encoded as queries."""
        return self.search_vectors(self.encoder.encode_queries(list(queries)), k)

    def search_vectors(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows and inner-product scores, shape ``(len(vectors), min(k, size))``; -1 = none."""
        k = min(k, self.size)
        scores, rows = self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        return rows.astype(np.int64), scores


def save_faiss(index: faiss.Index, folder: Path) -> None:
    """Write ``index`` as a new file renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    with fs.atomic_file(folder / INDEX_FILE) as partial:
        faiss.write_index(index, str(partial))


@dataclass(frozen=True)
class DenseSettings:
    """``index``: the faiss kind (flat, hnsw, ivf, ivfpq); ``dtype``: float32 or float16."""

    index: str = "flat"
    dtype: str = "float32"


def settings_encoder(index: Path, settings: Settings, runtime: Runtime) -> DenseEncoder:
    """The encoder an index recorded, loaded (and checked to be the same weights)."""
    encoder = DenseEncoder(
        wanted_model(index, settings, runtime.model),
        pooling=settings["pooling"],
        normalize=settings["normalize"],
        max_length=settings["max_length"],
        device=runtime.device,
        precision=runtime.precision,
    )
    check_same_model(index, settings, encoder.ref)
    return encoder


class DenseBuilder:
    """Encodes passages into a temporary file, then fills faiss from it by blocks."""

    def __init__(self, options: BuildOptions) -> None:
        self.settings = options.dense
        self.batch_size = options.encode_batch
        self.encoder = DenseEncoder(
            options.model, device=options.device, precision=options.precision
        )
        self.count = 0

    def tokenizer(self):
        return self.encoder.tokenizer, self.encoder.ref

    def start(self, folder: Path, first: Sequence[Document], corpus: CorpusPass) -> None:
        self.folder = folder
        self.vectors_path = folder / VECTORS_FILE
        self.vectors = self.vectors_path.open("wb")

    def add(self, batch: PassageBatch) -> None:
        if batch.texts:
            vectors = self.encoder.encode_documents(list(batch.texts), batch_size=self.batch_size)
            self.vectors.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
            self.count += len(batch.texts)

    def finish(self) -> Settings:
        self.vectors.close()
        dim = self.encoder.dim
        vectors = np.memmap(self.vectors_path, dtype=np.float32, mode="r", shape=(self.count, dim))
        factory = factory_string(self.settings.index, self.settings.dtype, self.count, dim)
        save_faiss(build_faiss(vectors, factory), self.folder / FOLDER)
        del vectors
        self.vectors_path.unlink()
        return {
            **self.encoder.settings(),
            "faiss": factory,
            "kind": self.settings.index,
            "dtype": self.settings.dtype,
        }


class DenseKind:
    """Bi-encoder retrieval over a faiss index."""

    name = "dense"
    folder = FOLDER
    reranks = False

    def builder(self, options: BuildOptions) -> DenseBuilder:
        return DenseBuilder(options)

    def add(self, index: Path, settings: Settings, batch: PassageBatch, runtime: Runtime) -> dict:
        """Encode the new passages with the index's model and append them to faiss."""
        if batch.texts:
            stored = faiss.read_index(str(index / FOLDER / INDEX_FILE))
            stored.add(
                settings_encoder(index, settings, runtime).encode_documents(list(batch.texts))
            )
            save_faiss(stored, index / FOLDER)
        return {}

    def delete(self, index: Path, settings: Settings, rows: np.ndarray) -> None:
        """Nothing to change: deleted rows are skipped at search time."""

    def open(self, index: Path, settings: Settings, options: SearchSettings) -> DenseIndex:
        runtime = Runtime(options.device, options.precision, options.model)
        return DenseIndex(index / FOLDER, settings_encoder(index, settings, runtime))
