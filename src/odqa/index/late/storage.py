"""The on-disk layout of a late-interaction index, its streaming writer, and its loader.

A folder holds, per token, ``codes.npy`` (centroid id: uint16, int32 past 65,536 centroids),
``residuals.npy`` (uint8, the codec's residual bytes) and, where the codec's scale is a
level, ``scales.npy`` (two tokens to a byte, :mod:`~odqa.index.late.nibbles`); per passage
``doclens.npy``, ``offsets.npy`` (first token) and ``deleted.npy``; the inverted file (per
centroid the pids using it, once each, ascending): ``ivf.npy`` (the lists' bytes,
:mod:`~odqa.index.late.postings`), ``ivf_lengths.npy`` (entries), ``ivf_offsets.npy`` (byte
starts, one more than the lists) and ``ivf_widths.npy`` (low-part widths); the codec in
``codec/``; and ``late.json``, which names the current file of each array. Updates write new
files under new names and replace ``late.json`` last, so a reader sees one whole state or
the other.

Older versions still read: version 2 lists a pid in as few little-endian bytes as the
passage count needs (``(entries, width)`` uint8), version 1 as int32, both with a float16
scale in each residual row. The first update of such an index writes its inverted file anew.
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
from odqa.index.late import nibbles, postings
from odqa.index.late.buckets import BucketCodec
from odqa.index.late.codec import CODEC_FILE, ResidualCodec, num_centroids
from odqa.index.late.nibbles import NibbleAppender
from odqa.index.late.postings import PostingLists, ranges
from odqa.index.late.product import ProductCodec

FORMAT = "odqa-late"
FORMAT_VERSION = 3  # 2: inverted file of narrow pids; 3: Elias-Fano lists, scale levels
META_FILE = "late.json"
TOKEN_ARRAYS = ("codes", "residuals", "scales")
LIST_ARRAYS = ("ivf", "ivf_lengths", "ivf_offsets", "ivf_widths")
ARRAYS = (*TOKEN_ARRAYS, "doclens", "offsets", "deleted", *LIST_ARRAYS)
BLOCK_TOKENS = 1 << 20  # tokens handled at once when streaming over the stored arrays
LIST_BLOCK = 1 << 22  # inverted-file entries coded at once
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
) -> None:
    """Write the inverted file of the ``live`` pids (its four arrays).

    Two streaming passes over ``codes`` (count the (centroid, pid) pairs, then place the
    pids in a scratch file beside the index), then the lists are coded a block at a time.
    """
    lengths = np.zeros(centroids, dtype=np.int64)
    for pair_codes, _ in _unique_pairs(codes, doclens, live):
        lengths += np.bincount(pair_codes, minlength=centroids)
    cursor = np.cumsum(lengths) - lengths
    scratch = fs.temporary_sibling(folder / array_filename("ivf", generation))
    try:
        placed = np.lib.format.open_memmap(
            scratch, mode="w+", dtype=np.uint32, shape=(int(lengths.sum()),)
        )
        for pair_codes, pair_pids in _unique_pairs(codes, doclens, live):
            rank = np.arange(len(pair_codes)) - np.searchsorted(pair_codes, pair_codes)
            placed[cursor[pair_codes] + rank] = pair_pids
            cursor += np.bincount(pair_codes, minlength=centroids)
        starts = np.cumsum(lengths) - lengths
        blocks = (
            (placed[starts[first] : starts[stop - 1] + lengths[stop - 1]], lengths[first:stop])
            for first, stop in pid_blocks(lengths, LIST_BLOCK)
        )
        write_lists(folder, generation, blocks, centroids)
        del placed
    finally:
        scratch.unlink(missing_ok=True)


def write_lists(
    folder: Path,
    generation: int,
    blocks: Iterator[tuple[np.ndarray, np.ndarray]],
    centroids: int,
) -> None:
    """Code the inverted file from ``blocks`` of consecutive lists (their pids end to end
    and their lengths, all ``centroids`` lists in order); save its four arrays."""
    lengths = np.zeros(centroids, dtype=np.int64)
    sizes = np.zeros(centroids, dtype=np.int64)
    widths = np.zeros(centroids, dtype=np.uint8)
    done = 0
    with fs.atomic_file(folder / array_filename("ivf", generation)) as partial:
        data = NpyAppender(partial, np.uint8)
        for pids, block_lengths in blocks:
            coded, block_sizes, block_widths = postings.encode(pids, block_lengths)
            data.append(coded)
            stop = done + len(block_lengths)
            lengths[done:stop], sizes[done:stop], widths[done:stop] = (
                block_lengths,
                block_sizes,
                block_widths,
            )
            done = stop
        data.close(expected=int(sizes.sum()))
    if done != centroids:
        raise OdqaError(f"{folder}: {done} inverted lists coded, {centroids} expected")
    save_array(folder, "ivf_lengths", generation, lengths)
    save_array(folder, "ivf_offsets", generation, np.concatenate([[0], np.cumsum(sizes)]))
    save_array(folder, "ivf_widths", generation, widths)


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


def array_names(codec: ResidualCodec) -> tuple[str, ...]:
    """The arrays of an index written with ``codec``: ``scales`` only for scale levels."""
    return tuple(name for name in ARRAYS if name != "scales" or codec.scale_nibble)


def split_packed(codec: ResidualCodec, packed: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A compressed block's rows as stored: the residual bytes, and the scale levels where
    the codec keeps them apart (else None)."""
    if not codec.scale_nibble:
        return packed, None
    return packed[:, :-1], packed[:, -1]


def first_files(codec: ResidualCodec) -> dict[str, str]:
    """``late.json``'s ``files`` of a new index written with ``codec``."""
    return {"codec": "codec", **{name: array_filename(name, 0) for name in array_names(codec)}}


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
        "files": first_files(codec),
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
        self._scales: NibbleAppender | None = None

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
        stored, levels = split_packed(self.codec, residuals)
        if self._tokens is None:
            self._tokens = (
                NpyAppender(self.folder / "codes.npy", self.codec.code_dtype),
                NpyAppender(self.folder / "residuals.npy", np.uint8, stored.shape[1:]),
            )
            if levels is not None:
                self._scales = NibbleAppender(self.folder / "scales.npy")
        self._tokens[0].append(codes)
        self._tokens[1].append(stored)
        if self._scales is not None:
            self._scales.append(levels)
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
        if self._scales is not None:
            self._scales.close(expected_tokens=tokens)
        doclens = np.concatenate([np.zeros(0, dtype=np.int64), *self._doclens])
        save_array(self.folder, "doclens", 0, doclens)
        save_array(self.folder, "offsets", 0, np.cumsum(doclens) - doclens)
        save_array(self.folder, "deleted", 0, np.zeros(len(doclens), dtype=bool))
        codes = np.load(self.folder / "codes.npy", mmap_mode="r")
        live = np.ones(len(doclens), dtype=bool)
        build_ivf(self.folder, 0, codes, doclens, live, self.codec.num_centroids)
        self.meta["tokens_at_training"] = max(self.meta["tokens_at_training"], tokens)
        self.meta["files"] = first_files(self.codec)
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
class NarrowLists:
    """The inverted file of format versions 1 and 2: pids as int32, or as ``(entries,
    width)`` little-endian bytes, list after list."""

    data: np.ndarray
    lengths: np.ndarray
    starts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)])

    def read(self, lists: np.ndarray) -> np.ndarray:
        """int64 pids of the given lists, end to end."""
        return read_pids(self.data[ranges(self.starts[lists], self.lengths[lists])])


@dataclass
class LateStore:
    """A loaded index: metadata, codec on the device, arrays memory-mapped from disk
    (``scales`` is None where the residual rows hold the scale)."""

    folder: Path
    meta: dict[str, Any]
    codec: ResidualCodec
    codes: np.ndarray
    residuals: np.ndarray
    scales: np.ndarray | None
    doclens: np.ndarray
    offsets: np.ndarray
    deleted: np.ndarray
    ivf_lengths: np.ndarray
    lists: PostingLists | NarrowLists

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> LateStore:
        folder = Path(folder)
        meta = read_meta(folder)
        files = meta["files"]
        codec = load_codec(folder / files["codec"], device)
        names = [name for name in ARRAYS if name in files]
        try:
            arrays = {name: np.load(folder / files[name], mmap_mode="r") for name in names}
        except (OSError, ValueError) as exc:
            raise IndexFormatError(f"{folder}: missing or damaged array: {exc}") from exc
        required = [name for name in array_names(codec) if name not in LIST_ARRAYS[2:]]
        missing = [name for name in required if name not in arrays]
        coded = "ivf_offsets" in arrays and "ivf_widths" in arrays
        if missing or (meta["format_version"] >= 3 and not coded):
            raise IndexFormatError(f"{folder}: {META_FILE} names no file for {missing or 'ivf'}")
        lengths = arrays["ivf_lengths"]
        lists: PostingLists | NarrowLists = (
            PostingLists(arrays["ivf"], arrays["ivf_offsets"], arrays["ivf_widths"], lengths)
            if coded
            else NarrowLists(arrays["ivf"], lengths)
        )
        store = cls(
            folder,
            meta,
            codec,
            **{name: arrays[name] for name in ("codes", "residuals", "doclens", "offsets")},
            scales=arrays.get("scales"),
            deleted=arrays["deleted"],
            ivf_lengths=lengths,
            lists=lists,
        )
        store._check()
        return store

    def _check(self) -> None:
        passages, tokens = self.meta["num_passages"], self.meta["num_tokens"]
        stored = self.codec.packed_dim - (1 if self.codec.scale_nibble else 0)
        centroids = self.codec.num_centroids
        checks = [
            ("codes", self.codes, (tokens,)),
            ("residuals", self.residuals, (tokens, stored)),
            ("doclens", self.doclens, (passages,)),
            ("offsets", self.offsets, (passages,)),
            ("deleted", self.deleted, (passages,)),
            ("ivf_lengths", self.ivf_lengths, (centroids,)),
        ]
        if self.scales is not None:
            checks.append(("scales", self.scales, ((tokens + 1) // 2,)))
        if isinstance(self.lists, PostingLists):
            checks.append(("ivf_offsets", self.lists.starts, (centroids + 1,)))
            checks.append(("ivf_widths", self.lists.widths, (centroids,)))
            end = int(self.lists.starts[-1]) if len(self.lists.starts) else 0
            checks.append(("ivf", self.lists.data, (end,)))
        for name, array, shape in checks:
            if array.shape != shape:
                raise IndexFormatError(
                    f"{self.folder}: {name} has shape {array.shape}, {META_FILE} says {shape}"
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
        return self.lists.read(cells), np.repeat(np.arange(len(cells)), lengths)

    def packed_rows(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), packed_dim) uint8: the given tokens' residual bytes as the codec
        packs them (the scale level last, where the index keeps levels apart)."""
        stored = np.take(self.residuals, rows, axis=0)
        if self.scales is None:
            return stored
        return np.concatenate([stored, nibbles.unpack(self.scales, rows)[:, None]], axis=1)

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
        return self.codec.decompress(codes, torch.from_numpy(self.packed_rows(rows)))

    def decompressed(self, pids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Decompressed passages (len(pids), max doclen, dim) on the device, and the token mask.

        Padding positions hold an arbitrary token: callers must apply the mask.
        """
        rows, mask = self.token_rows(pids)
        padded = self.decompress_rows(rows.reshape(-1)).view(*mask.shape, self.codec.dim)
        return padded, torch.from_numpy(mask).to(self.codec.device)
