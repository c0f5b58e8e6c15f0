"""The on-disk layout of a late-interaction index, its streaming writer, and its loader.

A folder holds, per token, ``codes.npy`` (centroid id: uint16, int32 past 65,536 centroids)
and ``residuals.npy`` (uint8, the codec's ``packed_dim`` per token); per passage
``doclens.npy``, ``offsets.npy`` (first token) and ``deleted.npy``; the inverted file
``ivf.npy`` (pids grouped by centroid, each pid once per centroid it uses, ascending) with
``ivf_lengths.npy``; the codec in ``codec/``; and ``late.json``, which names the
current file of each array. Updates write new files under new names and replace
``late.json`` last, so a reader sees one whole state or the other.

Since format version 2 an inverted-file entry is a pid in as few little-endian bytes as the
passage count needs (``(entries, width)`` uint8, 3 bytes up to 16.7M passages), about one
byte a token less than int32; version 1's int32 ``ivf.npy`` still reads.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import odqa.fs as fs
from odqa.errors import IndexFormatError, InputError, OdqaError
from odqa.fs import NpyAppender, atomic_directory
from odqa.index.late.buckets import BucketCodec
from odqa.index.late.codec import CODEC_FILE, ResidualCodec, num_centroids
from odqa.index.late.product import ProductCodec

FORMAT = "odqa-late"
FORMAT_VERSION = 2  # 2: inverted file of narrow pids
META_FILE = "late.json"
ARRAYS = ("codes", "residuals", "doclens", "offsets", "deleted", "ivf", "ivf_lengths")
BLOCK_TOKENS = 1 << 20  # tokens handled at once when streaming over the stored arrays
_OWNED = re.compile(
    rf"^(?:(?:{'|'.join(ARRAYS)})(?:\.\d+)?\.npy|codec(?:\.\d+)?|\..*\.partial-[0-9a-f]+)$"
)


def array_filename(name: str, generation: int) -> str:
    """``codes.npy`` for the first build, ``codes.3.npy`` for the file written by update 3."""
    return f"{name}.npy" if generation == 0 else f"{name}.{generation}.npy"


def save_array(folder: Path, name: str, generation: int, array: np.ndarray) -> None:
    """Write ``array`` under a temporary name, then rename it into place."""
    fs.save_array(folder / array_filename(name, generation), array)


@contextlib.contextmanager
def new_array(
    folder: Path, name: str, generation: int, dtype: np.dtype | type, shape: tuple[int, ...]
) -> Iterator[np.ndarray]:
    """A writable memory map for a new array file, renamed into place when the body ends."""
    with fs.atomic_file(folder / array_filename(name, generation)) as partial:
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=shape)
        yield out
        out.flush()
        del out


def read_meta(folder: Path) -> dict[str, Any]:
    """``late.json`` of ``folder``, checked for format and version."""
    path = folder / META_FILE
    if not folder.is_dir():
        raise IndexFormatError(f"{folder}: no such late-interaction index directory")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexFormatError(
            f"{path}: missing; {folder} is not a late-interaction index"
        ) from exc
    except json.JSONDecodeError as exc:
        raise IndexFormatError(f"{path}:{exc.lineno}: damaged metadata: {exc.msg}") from exc
    if meta.get("format") != FORMAT:
        raise IndexFormatError(f"{path}: field 'format' is {meta.get('format')!r}, not {FORMAT!r}")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise IndexFormatError(
            f"{path}: field 'format_version' is {version!r}; this odqa reads "
            f"{FORMAT_VERSION} and older: upgrade odqa"
        )
    return meta


def commit(folder: Path, meta: dict[str, Any]) -> None:
    """Make ``meta`` (whose files are all in place) current, then drop files it leaves out."""
    fs.write_text(folder / META_FILE, json.dumps(meta, indent=2) + "\n")
    remove_unreferenced(folder, meta)


def remove_unreferenced(folder: Path, meta: dict[str, Any]) -> None:
    """Delete index files that ``meta`` does not name: old generations, interrupted writes."""
    keep = set(meta["files"].values())
    for entry in folder.iterdir():
        if entry.name in keep or not _OWNED.match(entry.name):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def pid_blocks(doclens: np.ndarray, budget: int = BLOCK_TOKENS) -> Iterator[tuple[int, int]]:
    """Consecutive pid ranges ``[start, stop)`` of about ``budget`` tokens each."""
    ends = np.cumsum(doclens)
    start = 0
    while start < len(doclens):
        first = ends[start] - doclens[start]
        stop = max(start + 1, int(np.searchsorted(ends, first + budget, side="right")))
        yield start, stop
        start = stop


def ivf_width(num_passages: int) -> int:
    """Bytes per inverted-file entry: the fewest that hold every pid below ``num_passages``."""
    return min(4, max(1, (max(0, num_passages - 1).bit_length() + 7) // 8))


def pid_bytes(pids: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8: the low ``width`` little-endian bytes of each pid."""
    return pids.astype("<u4").view(np.uint8).reshape(-1, 4)[:, :width]


def read_pids(entries: np.ndarray) -> np.ndarray:
    """int64 pids of inverted-file entries: version 2 bytes (n, width) or version 1 int32."""
    if entries.ndim == 1:
        return entries.astype(np.int64)
    wide = np.zeros((entries.shape[0], 4), dtype=np.uint8)
    wide[:, : entries.shape[1]] = entries
    return wide.view("<u4").reshape(-1).astype(np.int64)


def build_ivf(
    folder: Path,
    generation: int,
    codes: np.ndarray,
    doclens: np.ndarray,
    live: np.ndarray,
    centroids: int,
) -> np.ndarray:
    """Write the inverted file of the ``live`` pids (entries :func:`ivf_width` bytes wide);
    returns its per-centroid lengths.

    Two streaming passes over ``codes``: count the (centroid, pid) pairs, then place them.
    """
    lengths = np.zeros(centroids, dtype=np.int64)
    for pair_codes, _ in _unique_pairs(codes, doclens, live):
        lengths += np.bincount(pair_codes, minlength=centroids)
    cursor = np.cumsum(lengths) - lengths
    width = ivf_width(len(doclens))
    with new_array(folder, "ivf", generation, np.uint8, (int(lengths.sum()), width)) as ivf:
        for pair_codes, pair_pids in _unique_pairs(codes, doclens, live):
            rank = np.arange(len(pair_codes)) - np.searchsorted(pair_codes, pair_codes)
            ivf[cursor[pair_codes] + rank] = pid_bytes(pair_pids, width)
            cursor += np.bincount(pair_codes, minlength=centroids)
    return lengths


def _unique_pairs(
    codes: np.ndarray, doclens: np.ndarray, live: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per pid block: the distinct (centroid, pid) pairs of live pids, sorted by centroid."""
    count = max(1, len(doclens))
    token = 0
    for start, stop in pid_blocks(doclens):
        lens = doclens[start:stop]
        pids = np.repeat(np.arange(start, stop), lens)
        block = np.asarray(codes[token : token + len(pids)], dtype=np.int64)
        token += len(pids)
        keep = live[pids]
        keys = np.unique(block[keep] * count + pids[keep])
        yield keys // count, keys % count


CODECS: dict[str, type[ResidualCodec]] = {
    codec.KIND: codec for codec in (BucketCodec, ProductCodec)
}


def load_codec(folder: Path, device: str | torch.device = "cpu") -> ResidualCodec:
    """The codec saved in ``folder``: a product codec, or the buckets of older indexes."""
    try:
        meta = json.loads((folder / CODEC_FILE).read_text(encoding="utf-8"))
        kind = meta.get("kind", "buckets")
        if kind not in CODECS:
            raise IndexFormatError(f"{folder}: unknown codec kind {kind!r}")
        return CODECS[kind].load(folder, meta, device)
    except (OSError, ValueError, KeyError) as exc:
        raise IndexFormatError(f"{folder}: missing or damaged codec: {exc}") from exc


def base_meta(codec: ResidualCodec, **params: Any) -> dict[str, Any]:
    """The metadata of an empty index made with ``codec``."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generation": 0,
        "dim": codec.dim,
        "nbits": codec.nbits,
        "num_centroids": codec.num_centroids,
        "num_passages": 0,
        "num_tokens": 0,
        "num_deleted": 0,
        "max_doclen": 0,
        **params,
        "files": {"codec": "codec", **{name: array_filename(name, 0) for name in ARRAYS}},
    }


def check_passages(embeddings: torch.Tensor, doclens: torch.Tensor, dim: int) -> np.ndarray:
    """Validate a passage batch; returns its doclens as int64 numpy."""
    if embeddings.ndim != 2 or embeddings.shape[1] != dim:
        raise InputError(
            f"embeddings must have shape (tokens, {dim}), got {tuple(embeddings.shape)}"
        )
    lens = np.asarray(torch.as_tensor(doclens).cpu(), dtype=np.int64).reshape(-1)
    if (lens < 0).any() or int(lens.sum()) != embeddings.shape[0]:
        raise InputError(
            f"doclens must be >= 0 and sum to the {embeddings.shape[0]} embedding rows, "
            f"got sum {int(lens.sum())}"
        )
    return lens


class LateIndexWriter:
    """Streams passages into a new index folder: ``train``, then ``add`` chunks, then ``finish``.

    Memory is bounded by one chunk: chunks are compressed and appended to the ``.npy``
    arrays where they stay (:class:`~odqa.fs.NpyAppender`: ``finish`` writes their headers,
    then builds the inverted file), so the disk a build needs never holds them twice.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        nbits: int = 2,
        kmeans_niters: int = 4,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if any(self.folder.iterdir()):
            raise OdqaError(f"{self.folder}: a new late-interaction index needs an empty folder")
        self.nbits, self.kmeans_niters, self.seed, self.device = nbits, kmeans_niters, seed, device
        self.codec: ResidualCodec | None = None
        self.meta: dict[str, Any] = {}
        self._doclens: list[np.ndarray] = []
        self._tokens: tuple[NpyAppender, NpyAppender] | None = None

    def train(
        self,
        sample: torch.Tensor,
        *,
        num_tokens: int | None = None,
        centroids: int | None = None,
    ) -> ResidualCodec:
        """Learn the codec from ``sample`` (tokens, dim), sized for a ``num_tokens`` corpus.

        ``centroids`` defaults to PLAID's :func:`num_centroids` of ``num_tokens`` (the sample
        size when not given); it is capped at the number of tokens clustered.
        """
        total = num_tokens if num_tokens is not None else sample.shape[0]
        self.codec = ProductCodec.train(
            sample,
            nbits=self.nbits,
            num_centroids=centroids or num_centroids(total),
            kmeans_niters=self.kmeans_niters,
            seed=self.seed,
            device=self.device,
        )
        self.codec.save(self.folder / "codec")
        self.meta = base_meta(
            self.codec,
            tokens_at_training=int(total),
            sample_tokens=int(sample.shape[0]),
            kmeans_niters=self.kmeans_niters,
            seed=self.seed,
        )
        return self.codec

    def add(self, embeddings: torch.Tensor, doclens: torch.Tensor) -> np.ndarray:
        """Compress and append one chunk of passages; returns their pids."""
        if self.codec is None:
            raise OdqaError("call train() before add()")
        lens = check_passages(embeddings, doclens, self.codec.dim)
        codes, residuals = self.codec.compress(embeddings)
        return self.add_compressed(codes.cpu().numpy(), residuals.cpu().numpy(), lens)

    def add_compressed(
        self, codes: np.ndarray, residuals: np.ndarray, doclens: np.ndarray
    ) -> np.ndarray:
        """Append passages compressed elsewhere with this writer's codec (on a Ray worker);
        returns their pids."""
        if self.codec is None:
            raise OdqaError("call train() before add_compressed()")
        lens = np.asarray(doclens, dtype=np.int64).reshape(-1)
        if len(codes) != int(lens.sum()) or residuals.shape != (len(codes), self.codec.packed_dim):
            raise OdqaError(
                f"{len(codes)} codes and residuals {residuals.shape} for passages of "
                f"{int(lens.sum())} tokens ({self.codec.packed_dim} bytes a residual)"
            )
        if self._tokens is None:
            self._tokens = (
                NpyAppender(self.folder / "codes.npy", self.codec.code_dtype),
                NpyAppender(self.folder / "residuals.npy", np.uint8, (self.codec.packed_dim,)),
            )
        self._tokens[0].append(codes)
        self._tokens[1].append(residuals)
        first = self.meta["num_passages"]
        self._doclens.append(lens)
        self.meta["num_passages"] += len(lens)
        self.meta["num_tokens"] += int(lens.sum())
        self.meta["max_doclen"] = max(self.meta["max_doclen"], int(lens.max(initial=0)))
        return np.arange(first, first + len(lens))

    def finish(self) -> None:
        """Turn the raw files into arrays, build the inverted file, write ``late.json`` last."""
        if self.codec is None:
            raise OdqaError("call train() before finish()")
        tokens = self.meta["num_tokens"]
        if self._tokens is None:
            self.add_compressed(
                np.zeros(0, self.codec.code_dtype),
                np.zeros((0, self.codec.packed_dim), np.uint8),
                np.zeros(0, np.int64),
            )
        for array in self._tokens:
            array.close(expected=tokens)
        doclens = np.concatenate([np.zeros(0, dtype=np.int64), *self._doclens])
        save_array(self.folder, "doclens", 0, doclens)
        save_array(self.folder, "offsets", 0, np.cumsum(doclens) - doclens)
        save_array(self.folder, "deleted", 0, np.zeros(len(doclens), dtype=bool))
        codes = np.load(self.folder / "codes.npy", mmap_mode="r")
        live = np.ones(len(doclens), dtype=bool)
        lengths = build_ivf(self.folder, 0, codes, doclens, live, self.codec.num_centroids)
        save_array(self.folder, "ivf_lengths", 0, lengths)
        self.meta["tokens_at_training"] = max(self.meta["tokens_at_training"], tokens)
        commit(self.folder, self.meta)


@contextlib.contextmanager
def build_late_index(
    folder: str | Path,
    *,
    overwrite: bool = False,
    nbits: int = 2,
    kmeans_niters: int = 4,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> Iterator[LateIndexWriter]:
    """A writer into a temporary sibling of ``folder``, finished and renamed into place on exit.

    If the body raises, ``folder`` is left as it was.
    """
    with atomic_directory(folder, overwrite=overwrite) as staging:
        writer = LateIndexWriter(
            staging, nbits=nbits, kmeans_niters=kmeans_niters, seed=seed, device=device
        )
        yield writer
        writer.finish()


@dataclass
class LateStore:
    """A loaded index: metadata, codec on the device, arrays memory-mapped from disk."""

    folder: Path
    meta: dict[str, Any]
    codec: ResidualCodec
    codes: np.ndarray
    residuals: np.ndarray
    doclens: np.ndarray
    offsets: np.ndarray
    deleted: np.ndarray
    ivf: np.ndarray
    ivf_lengths: np.ndarray
    ivf_starts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.ivf_starts = np.concatenate([[0], np.cumsum(self.ivf_lengths)])

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> LateStore:
        folder = Path(folder)
        meta = read_meta(folder)
        files = meta["files"]
        codec = load_codec(folder / files["codec"], device)
        try:
            arrays = {name: np.load(folder / files[name], mmap_mode="r") for name in ARRAYS}
        except (OSError, ValueError, KeyError) as exc:
            raise IndexFormatError(f"{folder}: missing or damaged array: {exc}") from exc
        store = cls(folder, meta, codec, **arrays)
        store._check()
        return store

    def _check(self) -> None:
        passages, tokens = self.meta["num_passages"], self.meta["num_tokens"]
        shapes = {
            "codes": (tokens,),
            "residuals": (tokens, self.codec.packed_dim),
            "doclens": (passages,),
            "offsets": (passages,),
            "deleted": (passages,),
            "ivf_lengths": (self.codec.num_centroids,),
        }
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise IndexFormatError(
                    f"{self.folder}: {name} has shape {getattr(self, name).shape}, "
                    f"{META_FILE} says {shape}"
                )

    @property
    def num_passages(self) -> int:
        return int(self.meta["num_passages"])

    def live_pids(self) -> np.ndarray:
        """Pids that can match: not deleted, at least one token."""
        return np.flatnonzero(~np.asarray(self.deleted) & (np.asarray(self.doclens) > 0))

    def ivf_lists(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pids listed under ``cells``, and for each the index in ``cells`` of its list."""
        lengths = self.ivf_lengths[cells]
        return read_pids(self.ivf[ranges(self.ivf_starts[cells], lengths)]), np.repeat(
            np.arange(len(cells)), lengths
        )

    def token_rows(self, pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Token row of each position of each passage, padded (with row 0), and the mask."""
        lens = self.doclens[pids]
        width = max(1, int(lens.max(initial=0)))
        columns = np.arange(width)
        mask = columns < lens[:, None]
        return np.where(mask, self.offsets[pids][:, None] + columns, 0), mask

    def decompress_rows(self, rows: np.ndarray, codes: torch.Tensor | None = None) -> torch.Tensor:
        """Float32 (len(rows), dim) unit vectors of the given token rows, on the device
        (``codes``: their centroid ids, where the caller has read them already)."""
        if codes is None:
            codes = torch.from_numpy(np.asarray(self.codes[rows], dtype=np.int64))
        return self.codec.decompress(codes, torch.from_numpy(np.take(self.residuals, rows, axis=0)))

    def decompressed(self, pids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Decompressed passages (len(pids), max doclen, dim) on the device, and the token mask.

        Padding positions hold an arbitrary token: callers must apply the mask.
        """
        rows, mask = self.token_rows(pids)
        padded = self.decompress_rows(rows.reshape(-1)).view(*mask.shape, self.codec.dim)
        return padded, torch.from_numpy(mask).to(self.codec.device)


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start, start + length)`` for each pair, without a Python loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    firsts = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum())) - np.repeat(firsts - np.asarray(starts), lengths)
