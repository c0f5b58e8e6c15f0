"""The dense kind: bi-encoder vectors in faiss, exact inner product by default, IVF / HNSW /
IVF-PQ for large sets."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import faiss
import numpy as np

from odqa.encode import VECTORS, EncodedBatch, Encoder
from odqa.encode.encoders import QueryEncoder, query_encoder, recorded_encoder
from odqa.encode.vectors import read_npy_header
from odqa.errors import OdqaError
from odqa.fs import LOG, NpyAppender
from odqa.index import dense_segments as segments
from odqa.index.dense_segments import INDEX_FILE, REFINE_FILE
from odqa.index.identify import document_texts
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
from odqa.index.languages import language_unread, unreadable_warning
from odqa.index.options import BuildOptions, precomputed_for
from odqa.index.settings import DenseSettings, KindSettings

FOLDER = "dense"
VECTORS_FILE = "vectors.tmp"

KINDS = ("flat", "hnsw", "ivf", "ivfpq")
DTYPES = ("float32", "float16")
ADD_BLOCK = 65_536
TRAIN_SAMPLE = 256 * 1024
TRAIN_PER_LIST = 64
"""Vectors sampled to train an inverted file: 64 a list (faiss warns under 39), at most
``TRAIN_SAMPLE``, at least 16,384 (product-quantiser codebooks need them)."""
PQ_MIN_VECTORS = 1_000
NLIST_MAX = 4096
"""Inverted lists at most. k-means on the sample and assigning every vector cost in
proportion; measured on 2 shared cores (256k-vector sample, 384 dims, IVF-PQ48): 1,024 lists
train in 225 s and add 40 s per million vectors, 4,096 lists 353 s and 93 s per million."""


def factory_string(kind: str, dtype: str, count: int, dim: int) -> str:
    """The faiss index factory string for a named kind, sized for ``count`` vectors.

    flat: exact search (every vector in memory). hnsw: graph, fast and memory-hungry. ivf:
    ``4*sqrt(n)`` lists (at most 4,096), approximate. ivfpq: ivf with product quantisation
    (dim/8 bytes per vector), smallest. ``float16`` stores vectors at half size (not
    applicable to ivfpq).
    """
    if kind not in KINDS:
        raise OdqaError(f"dense index kind must be one of {KINDS}, got {kind!r}")
    if dtype not in DTYPES:
        raise OdqaError(f"dense dtype must be one of {DTYPES}, got {dtype!r}")
    storage = "SQfp16" if dtype == "float16" else "Flat"
    nlist = max(1, min(int(4 * math.sqrt(count)), count // 39, NLIST_MAX))
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


class VectorFile:
    """Vectors appended to a ``.npy`` file as they come, then read back by blocks with plain
    reads (never memory-mapped, so reading a large file does not grow the process)."""

    def __init__(self, path: Path, dim: int, dtype: str) -> None:
        self.path, self.dim, self.dtype = path, dim, np.dtype(dtype)
        self.writer: NpyAppender | None = NpyAppender(path, dtype, (dim,))
        self.count = 0

    @classmethod
    def existing(cls, path: Path) -> VectorFile:
        """A file written before, to read."""
        with open(path, "rb") as handle:
            (count, dim), dtype = read_npy_header(path, handle)
        found = cls.__new__(cls)
        found.path, found.dim, found.dtype, found.writer, found.count = (
            path,
            dim,
            dtype,
            None,
            count,
        )
        return found

    def append(self, vectors: np.ndarray) -> None:
        self.writer.append(vectors)
        self.count += len(vectors)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def blocks(self, block: int = ADD_BLOCK) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, float32 rows)`` of at most ``block`` rows each, in order."""
        with open(self.path, "rb") as handle:
            read_npy_header(self.path, handle)
            for start in range(0, self.count, block):
                rows = np.fromfile(
                    handle, self.dtype, count=min(block, self.count - start) * self.dim
                )
                yield start, rows.reshape(-1, self.dim).astype(np.float32, copy=False)

    def sample(self, size: int, seed: int = 0) -> np.ndarray:
        """``size`` rows chosen by a seeded generator (all when fewer), read in one pass."""
        if size >= self.count:
            return np.concatenate([rows for _, rows in self.blocks()])
        chosen = np.sort(np.random.default_rng(seed).choice(self.count, size=size, replace=False))
        out = np.empty((size, self.dim), np.float32)
        filled = 0
        for start, rows in self.blocks():
            picked = chosen[(chosen >= start) & (chosen < start + len(rows))] - start
            out[filled : filled + len(picked)] = rows[picked]
            filled += len(picked)
        return out


def build_faiss(
    vectors: VectorFile, factory: str, seed: int = 0
) -> tuple[faiss.Index, faiss.Index | None]:
    """Train (when the kind needs it) on a capped seeded sample, then add by blocks; returns
    the index, and the trained index before any vector was added (None for a kind that
    trains nothing): what additions start their segments from."""
    index = faiss.index_factory(vectors.dim, factory, faiss.METRIC_INNER_PRODUCT)
    trained = None
    if not index.is_trained:
        lists = faiss.extract_index_ivf(index).nlist if "IVF" in factory else 0
        wanted = min(TRAIN_SAMPLE, max(TRAIN_PER_LIST * lists, 16_384))
        index.train(vectors.sample(min(vectors.count, wanted), seed))
        trained = faiss.clone_index(index)
    for _, block in vectors.blocks():
        index.add(block)
    return index, trained


class DenseIndex(RowSearcher):
    """The segments of a dense folder (:mod:`odqa.index.dense_segments`) searched with
    ``encoder``'s queries: each segment's best, the best of all kept.

    With ``refine`` (ivfpq), each segment's best ``max(refine, 10*k, size / REFINE_SHARE)``
    candidates by faiss are rescored exactly against the float16 vectors kept beside it
    (memory-mapped): the depth grows with the index, as PQ's ranking coarsens.
    """

    def __init__(
        self,
        folder: Path,
        encoder: QueryEncoder | None = None,
        nprobe: int = 32,
        ef_search: int = 128,
        refine: int = 0,
    ) -> None:
        self.encoder = encoder
        self.segments = segments.open_segments(folder, refine)
        for segment in self.segments:
            segment.tune(nprobe, ef_search)
        self.size = sum(segment.size for segment in self.segments)
        self.refine = refine

    @property
    def index(self) -> faiss.Index:
        """The build's faiss index (the first segment's)."""
        return self.segments[0].index

    def search(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of query texts, encoded as queries."""
        return self.search_vectors(self.encoder.encode_queries(list(queries)), k, allowed)

    def search_vectors(
        self, vectors: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and inner-product scores, shape ``(len(vectors), min(k, size))``; -1 = none.

        With ``allowed`` (a boolean per row) faiss skips the other rows while it searches
        (an ``IDSelectorBitmap``)."""
        k = min(k, self.size)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        found = [
            segment.search(vectors, k, allowed, self.refine, self.size) for segment in self.segments
        ]
        if len(found) == 1:
            return found[0]
        return segments.best_of(found, k)


class DenseStore:
    """The dense share of a build once vectors are known: vectors streamed to disk (float16
    in ``dense/vectors.f16.npy`` when refining, else a float32 temporary), then faiss
    trained on a sample and filled by blocks. Memory stays bounded but for ``flat``/``hnsw``/
    ``ivf`` storage, which faiss holds in memory."""

    def __init__(self, folder: Path, settings: DenseSettings, dim: int) -> None:
        self.folder, self.settings, self.dim = folder, settings, dim
        if settings.index not in KINDS:
            raise OdqaError(f"dense index kind must be one of {KINDS}, got {settings.index!r}")
        if settings.refine < 0 or settings.nprobe < 1:
            raise OdqaError("dense refine must be 0 or more and nprobe 1 or more")
        (folder / FOLDER).mkdir(parents=True, exist_ok=True)
        if settings.refined():
            self.vectors = VectorFile(folder / FOLDER / REFINE_FILE, dim, "float16")
        else:
            self.vectors = VectorFile(folder / VECTORS_FILE, dim, "float32")

    def add(self, vectors: np.ndarray) -> None:
        self.vectors.append(vectors)

    def finish(self) -> Record:
        """Build and save faiss; returns the manifest's faiss settings."""
        self.vectors.close()
        count = self.vectors.count
        factory = factory_string(self.settings.index, self.settings.dtype, count, self.dim)
        index, trained = build_faiss(self.vectors, factory)
        segments.save_index(index, self.folder / FOLDER / INDEX_FILE)
        if trained is not None:
            segments.save_index(trained, self.folder / FOLDER / segments.TRAINED_FILE)
        if not self.settings.refined():
            self.vectors.path.unlink()
        return {"faiss": factory, **self.settings.record()}


class DenseBuilder(KindBuilder):
    """Passages' vectors, as the encode stage gives them, into a :class:`DenseStore`."""

    def __init__(self, settings: DenseSettings, encoder: Encoder, vectors_from: Path | None):
        self.settings, self.encoder, self.vectors_from = settings, encoder, vectors_from

    def start(self, start: BuildStart) -> None:
        self.store = DenseStore(start.folder, self.settings, self.encoder.dim)
        self.readability = self.read_check(start)

    def add(self, batch: EncodedBatch) -> None:
        if batch.texts:
            self.store.add(batch.encoded[DenseKind.name])

    def read_check(self, start: BuildStart) -> dict:
        """Whether the encoder reads the collection: not where it is known not to read its
        language (:func:`language_unread`), else by a WordPiece tokenizer's figures on the
        first documents (a multilingual model without one is taken as reading them); warns
        where it does not."""
        from odqa.models.readability import measure

        found = self.encoder.tokenizer()
        name = found[1] if found else self.encoder.describe()["model"]
        if why := language_unread(name, start.language):
            LOG.warning("warning: %s", unreadable_warning(name, why))
            return {"readable": False, "measured": False, "why": why}
        if found is None:
            return {"readable": True, "measured": False, "why": "multilingual model"}
        reading = measure(found[0], document_texts(list(start.first)))
        if not reading.readable:
            LOG.warning("warning: %s", unreadable_warning(name, reading.describe()))
        return {**reading.record(), "measured": True}

    def footprint(self, passages: int) -> Footprint:
        """faiss's file (which flat, hnsw and ivf hold in memory whole), the float16 refine
        vectors, and the float32 vectors kept on disk while building."""
        dim, kind = self.encoder.dim, self.settings.index
        width = 2 if self.settings.dtype == "float16" else 4
        stored = {"flat": width * dim, "hnsw": width * dim + 256, "ivf": width * dim + 8}
        index = stored.get(kind, max(1, dim // 8) + 8)
        refine = 2 * dim if self.settings.refined() else 0
        disk = passages * (index + refine)
        return Footprint(disk=disk + passages * 4 * dim, memory=passages * index + (1 << 30))

    def finish(self) -> Record:
        found = {"vectors_from": str(self.vectors_from)} if self.vectors_from else {}
        return {
            **self.encoder.describe(),
            **self.store.finish(),
            "readability": self.readability,
            **found,
        }


class DenseKind(RetrieverKind):
    """Bi-encoder retrieval over a faiss index."""

    name = "dense"
    folder = FOLDER
    settings = DenseSettings
    builder_class = DenseBuilder
    searcher_class = DenseIndex

    def encoder(self, settings: KindSettings, options: BuildOptions) -> Encoder:
        return Encoder(
            VECTORS, options.model, options.device, options.precision, options.encode_batch
        )

    def recorded_encoder(self, index: Path, record: Record, runtime: Runtime) -> Encoder:
        return recorded_encoder(
            index,
            record,
            VECTORS,
            device=runtime.device,
            precision=runtime.precision,
            model=runtime.model,
        )

    def builder(self, settings: KindSettings, options: BuildOptions) -> DenseBuilder:
        source = precomputed_for(self.name, options.embeddings_from, options.retrievers)
        vectors_from = source.folder.resolve() if source is not None else None
        return DenseBuilder(settings, self.encoder(settings, options), vectors_from)

    def add(
        self, index: Path, record: Record, batch: EncodedBatch, runtime: Runtime, first_row: int
    ) -> dict:
        """The new passages' vectors (encoded with the index's model) as a segment of their
        own; too many segments are merged."""
        if not batch.texts:
            return {}
        vectors = np.ascontiguousarray(batch.encoded[self.name], np.float32)
        folder, refine = index / FOLDER, DenseSettings.recorded(record).refine
        added = segments.empty_like(folder, record["faiss"], vectors.shape[1])
        added.add(vectors)
        name = segments.next_name(folder)
        segments.write_segment(folder, name, added, first_row, vectors if refine else None)
        if len(segments.added_segments(folder)) > segments.MAX_SEGMENTS:
            merged = segments.merge_added(folder, record["faiss"], vectors.shape[1], refine)
            return {"dense_merged_segments": merged}
        return {}

    def delete(self, index: Path, record: Record, rows: np.ndarray) -> None:
        """Nothing to change: deleted rows are left out as faiss searches."""

    def compact_bytes(self, index: Path, record: Record) -> int:
        """The added segments' size: they are written again as one."""
        root = index / FOLDER / segments.SEGMENTS
        return sum(path.stat().st_size for path in root.glob("*") if path.is_file())

    def compact(self, index: Path, record: Record) -> dict:
        """The added segments merged into one (the build's stays as it is)."""
        folder = index / FOLDER
        if len(segments.added_segments(folder)) < 2:
            return {}
        dim = int(record["dim"])
        merged = segments.merge_added(
            folder, record["faiss"], dim, DenseSettings.recorded(record).refine
        )
        return {"dense_segments_merged": merged}

    def open(self, index: Path, record: Record, options: SearchSettings) -> DenseIndex:
        settings = DenseSettings.recorded(record)
        encoder = query_encoder(
            index,
            record,
            VECTORS,
            device=options.device,
            precision=options.precision,
            model=options.model,
        )
        return DenseIndex(
            index / FOLDER,
            encoder,
            nprobe=options.nprobe or settings.nprobe,
            refine=settings.refine,
        )
