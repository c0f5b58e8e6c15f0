"""Dense vectors in faiss: exact inner product by default, IVF / HNSW / IVF-PQ for large sets."""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

from odqa.errors import OdqaError

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
    """A saved faiss index whose ids are passage rows."""

    def __init__(self, folder: Path, nprobe: int = 32, ef_search: int = 128) -> None:
        self.index = faiss.read_index(str(folder / INDEX_FILE))
        self.size = int(self.index.ntotal)
        if hasattr(self.index, "nprobe"):
            faiss.extract_index_ivf(self.index).nprobe = nprobe
        if hasattr(self.index, "hnsw"):
            self.index.hnsw.efSearch = max(ef_search, 16)

    def search_vectors(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows and inner-product scores, shape ``(len(vectors), min(k, size))``; -1 = none."""
        k = min(k, self.size)
        scores, rows = self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        return rows.astype(np.int64), scores


def save_faiss(index: faiss.Index, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(folder / INDEX_FILE))
