"""Dense vectors in segments: the build's faiss index, and one small index an addition.

The build writes ``dense/dense.faiss`` (rows 0 on; with refining, ``dense/vectors.f16.npy``
beside it) and, for a kind that trains (IVF, IVF-PQ), ``dense/trained.faiss``: the trained
index before any vector was added (its centroids and codebooks). An addition writes
``dense/segments/NNNNN.faiss`` (and ``NNNNN.f16.npy``), an index of the same kind holding the
new rows alone, described by ``NNNNN.json`` (its first row): the build's files are never
rewritten, so what an addition costs grows with the addition. A search asks every segment
for its best and keeps the best of all; deleted rows are left out as they are searched.
When more than :data:`MAX_SEGMENTS` additions pile up they are merged into one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

import odqa.fs as fs
from odqa.errors import IndexFormatError

INDEX_FILE = "dense.faiss"
REFINE_FILE = "vectors.f16.npy"
TRAINED_FILE = "trained.faiss"
SEGMENTS = "segments"
MAX_SEGMENTS = 8
REFINE_SHARE = 10_000
"""The refine depth is at least one passage in this many: PQ48 over 10M resampled vectors
kept 0.68 of the true top 10 in its best 100, 0.98 in its best 1,000 (bench/scale_dense.py)."""


def save_index(index: faiss.Index, path: Path) -> None:
    """Write ``index`` as a new file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with fs.atomic_file(path) as partial:
        faiss.write_index(index, str(partial))


@dataclass
class DenseSegment:
    """One faiss index of consecutive rows (``first_row`` on), with its exact float16
    vectors when refining."""

    index: faiss.Index
    first_row: int
    exact: np.ndarray | None

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def tune(self, nprobe: int, ef_search: int) -> None:
        if hasattr(self.index, "nprobe"):
            faiss.extract_index_ivf(self.index).nprobe = nprobe
        if hasattr(self.index, "hnsw"):
            self.index.hnsw.efSearch = max(ef_search, 16)

    def search(
        self, vectors: np.ndarray, k: int, allowed: np.ndarray | None, refine: int, total: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows (of the whole collection) and scores of the segment's best ``k``; -1 none."""
        k = min(k, self.size)
        mine = None if allowed is None else allowed[self.first_row : self.first_row + self.size]
        if self.exact is None:
            scores, rows = self._search(vectors, k, mine)
            return np.where(rows >= 0, rows + self.first_row, -1).astype(np.int64), scores
        depth = max(refine, 10 * k, total // REFINE_SHARE)
        _, candidates = self._search(vectors, min(self.size, depth), mine)
        rows = np.full((len(vectors), k), -1, dtype=np.int64)
        scores = np.full((len(vectors), k), -np.inf, dtype=np.float32)
        for number, (query, found) in enumerate(zip(vectors, candidates, strict=True)):
            found = np.unique(found[found >= 0])
            exact = np.asarray(self.exact[found], dtype=np.float32) @ query
            best = np.argsort(-exact, kind="stable")[:k]
            rows[number, : len(best)] = found[best] + self.first_row
            scores[number, : len(best)] = exact[best]
        return rows, scores

    def _search(
        self, vectors: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """faiss's search, among the ``allowed`` rows only when given. An approximate kind
        (IVF, HNSW) may find fewer than ``k`` of a small allowed set; those queries are then
        searched exhaustively among them (every inverted list; HNSW's flat storage)."""
        if k == 0:
            empty = np.zeros((len(vectors), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        if allowed is None:
            return self.index.search(vectors, k)
        bitmap = np.packbits(np.asarray(allowed, bool), bitorder="little")
        selector = faiss.IDSelectorBitmap(bitmap)
        scores, rows = self.index.search(vectors, k, params=self._parameters(selector))
        short = np.flatnonzero((rows >= 0).sum(axis=1) < min(k, int(allowed.sum())))
        if len(short) and (hasattr(self.index, "nprobe") or hasattr(self.index, "hnsw")):
            scores[short], rows[short] = self._search_all(vectors[short], k, selector)
        return scores, rows

    def _parameters(self, selector: faiss.IDSelector) -> faiss.SearchParameters:
        if hasattr(self.index, "nprobe"):
            nprobe = faiss.extract_index_ivf(self.index).nprobe
            return faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
        if hasattr(self.index, "hnsw"):
            return faiss.SearchParametersHNSW(sel=selector, efSearch=self.index.hnsw.efSearch)
        return faiss.SearchParameters(sel=selector)

    def _search_all(
        self, vectors: np.ndarray, k: int, selector: faiss.IDSelector
    ) -> tuple[np.ndarray, np.ndarray]:
        if hasattr(self.index, "hnsw"):
            storage = faiss.downcast_index(self.index.storage)
            return storage.search(vectors, k, params=faiss.SearchParameters(sel=selector))
        lists = faiss.extract_index_ivf(self.index).nlist
        return self.index.search(
            vectors, k, params=faiss.SearchParametersIVF(sel=selector, nprobe=lists)
        )


def added_segments(folder: Path) -> list[Path]:
    """The descriptions (``NNNNN.json``) of a dense folder's added segments, in row order."""
    root = folder / SEGMENTS
    found = list(root.glob("*.json")) if root.is_dir() else []
    return sorted(found, key=lambda path: _described(path)["first_row"])


def _described(path: Path) -> dict:
    try:
        described = json.loads(path.read_text(encoding="utf-8"))
        int(described["first_row"])
        return described
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexFormatError(
            f"{path}: a dense segment's description is unreadable ({exc})"
        ) from exc


def open_segments(folder: Path, refine: int) -> list[DenseSegment]:
    """Every segment of a dense folder, opened (exact vectors memory-mapped when refining)."""
    exact = np.load(folder / REFINE_FILE, mmap_mode="r") if refine > 0 else None
    segments = [DenseSegment(faiss.read_index(str(folder / INDEX_FILE)), 0, exact)]
    for path in added_segments(folder):
        described = _described(path)
        refine_path = path.with_suffix(".f16.npy")
        segments.append(
            DenseSegment(
                faiss.read_index(str(path.with_suffix(".faiss"))),
                int(described["first_row"]),
                np.load(refine_path, mmap_mode="r") if refine > 0 else None,
            )
        )
    return segments


def best_of(
    found: Sequence[tuple[np.ndarray, np.ndarray]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of several segments' results (each ``(rows, scores)``, query by
    query), by score, ties by row; -1 where fewer were found."""
    rows = np.concatenate([part[0] for part in found], axis=1)
    scores = np.concatenate([part[1] for part in found], axis=1).astype(np.float32)
    scores = np.where(rows >= 0, scores, -np.inf)
    order = np.lexsort((np.where(rows >= 0, rows, np.iinfo(np.int64).max), -scores), axis=1)[:, :k]
    best_rows = np.take_along_axis(rows, order, axis=1)
    best_scores = np.take_along_axis(scores, order, axis=1)
    return np.where(np.isfinite(best_scores), best_rows, -1), best_scores


def empty_like(folder: Path, factory: str, dim: int) -> faiss.Index:
    """An empty index of the build's kind to add new rows to: the trained one the build kept
    (made once from the build's index, for one written before odqa kept it), or, for a kind
    that trains nothing, a new one of its factory string."""
    trained = folder / TRAINED_FILE
    if trained.is_file():
        return faiss.read_index(str(trained))
    fresh = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    if fresh.is_trained:
        return fresh
    whole = faiss.read_index(str(folder / INDEX_FILE))
    whole.reset()
    save_index(whole, trained)  # a new file in the update's copy: kept for the next one
    return whole


def write_segment(
    folder: Path, name: str, index: faiss.Index, first_row: int, exact: np.ndarray | None
) -> None:
    """An added segment's files: its index, its exact vectors, its description."""
    root = folder / SEGMENTS
    save_index(index, root / f"{name}.faiss")
    if exact is not None:
        fs.save_array(root / f"{name}.f16.npy", np.asarray(exact, np.float16))
    described = {"first_row": first_row, "rows": int(index.ntotal)}
    fs.write_text(root / f"{name}.json", json.dumps(described))


def next_name(folder: Path) -> str:
    root = folder / SEGMENTS
    names = [int(path.stem) for path in root.glob("*.json")] if root.is_dir() else []
    return f"{max(names, default=0) + 1:05d}"


def vectors_of(segment: DenseSegment) -> np.ndarray:
    """A segment's vectors: its exact ones when refining, else as faiss holds them."""
    if segment.exact is not None:
        return np.asarray(segment.exact, np.float32)
    index = segment.index
    if hasattr(index, "nprobe"):
        faiss.extract_index_ivf(index).make_direct_map()
    return index.reconstruct_n(0, index.ntotal)


def merge_added(folder: Path, factory: str, dim: int, refine: int) -> int:
    """The added segments merged into one (the build's left as it is); returns how many."""
    paths = added_segments(folder)
    opened = open_segments(folder, refine)[1:]
    index = empty_like(folder, factory, dim)
    vectors = np.concatenate([vectors_of(segment) for segment in opened])
    index.add(np.ascontiguousarray(vectors, np.float32))
    first = opened[0].first_row
    for path in paths:
        for suffix in (".faiss", ".f16.npy", ".json"):
            path.with_suffix(suffix).unlink(missing_ok=True)
    write_segment(folder, next_name(folder), index, first, vectors if refine > 0 else None)
    return len(paths)
