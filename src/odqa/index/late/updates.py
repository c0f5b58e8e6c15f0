"""Changing a saved index: add passages, delete passages, re-cluster.

Each update writes the arrays it changes under new names, then replaces ``late.json``; if
it fails midway the new files are removed and the index keeps its previous contents.
``add`` copies the token arrays and codes the inverted file's lists again with the added
passages' entries at their ends; ``delete`` rebuilds the inverted file from the codes. For bulk
loading, use :class:`~odqa.index.late.storage.LateIndexWriter`.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from odqa.fs import atomic_file
from odqa.index.late.codec import ResidualCodec, num_centroids, training_pids
from odqa.index.late.exact import check_pids
from odqa.index.late.nibbles import NibbleAppender
from odqa.index.late.postings import PostingLists
from odqa.index.late.product import ProductCodec
from odqa.index.late.storage import (
    BLOCK_TOKENS,
    FORMAT_VERSION,
    LIST_BLOCK,
    LateStore,
    array_filename,
    build_ivf,
    check_passages,
    commit,
    new_array,
    pid_blocks,
    ranges,
    remove_unreferenced,
    save_array,
    split_packed,
    write_lists,
)

RECLUSTER_FACTOR = 2.0  # advise re-clustering once the index holds this many times the tokens


@dataclass(frozen=True)
class AddResult:
    """The pids given to the added passages, and whether :func:`recluster` is advised."""

    pids: np.ndarray
    recluster_advised: bool


@contextlib.contextmanager
def _update(
    folder: str | Path, device: str | torch.device
) -> Iterator[tuple[LateStore, dict[str, Any]]]:
    """The loaded index and a copy of its metadata (generation bumped) to fill in.

    The copy is committed when the body ends; if the body raises, files written under the
    new generation are deleted and the old metadata stays current.
    """
    store = LateStore.load(folder, device)
    meta = copy.deepcopy(store.meta)
    meta["generation"] += 1
    try:
        yield store, meta
    except BaseException:
        remove_unreferenced(store.folder, store.meta)
        raise
    commit(store.folder, meta)


def add_passages(
    folder: str | Path,
    embeddings: torch.Tensor,
    doclens: torch.Tensor,
    *,
    device: str | torch.device = "cpu",
) -> AddResult:
    """Append passages, compressed with the existing centroids; returns their new pids."""
    with _update(folder, device) as (store, meta):
        lens = check_passages(embeddings, doclens, store.codec.dim)
        codes, packed = store.codec.compress(embeddings)
        first, old_tokens = meta["num_passages"], meta["num_tokens"]
        tokens = old_tokens + len(codes)
        generation = meta["generation"]
        stored, levels = split_packed(store.codec, packed.cpu().numpy())
        for name, added in (("codes", codes.cpu().numpy()), ("residuals", stored)):
            old = getattr(store, name)
            with new_array(
                store.folder, name, generation, old.dtype, (tokens, *old.shape[1:])
            ) as out:
                _copy(old, out)
                out[old_tokens:] = added
        if store.scales is not None:
            _append_levels(store, generation, old_tokens, levels)
            _set_files(meta, "scales")
        all_lens = np.concatenate([store.doclens, lens])
        deleted = np.concatenate([store.deleted, np.zeros(len(lens), dtype=bool)])
        save_array(store.folder, "doclens", generation, all_lens)
        save_array(store.folder, "offsets", generation, np.cumsum(all_lens) - all_lens)
        save_array(store.folder, "deleted", generation, deleted)
        _set_files(meta, "codes", "residuals", "doclens", "offsets", "deleted")
        if isinstance(store.lists, PostingLists):
            _append_ivf(store, meta, first, lens, codes.cpu().numpy())
        else:
            _write_ivf(store.folder, meta, all_lens, ~deleted)
        meta["num_passages"] += len(lens)
        meta["num_tokens"] = tokens
        meta["max_doclen"] = max(meta["max_doclen"], int(lens.max(initial=0)))
    advised = meta["num_tokens"] > RECLUSTER_FACTOR * meta["tokens_at_training"]
    return AddResult(np.arange(first, first + len(lens)), advised)


def delete_passages(
    folder: str | Path, pids: Sequence[int], *, device: str | torch.device = "cpu"
) -> int:
    """Mark ``pids`` deleted and drop them from the inverted file; returns how many were live.

    Their tokens stay stored, so pids never shift.
    """
    with _update(folder, device) as (store, meta):
        chosen = check_pids(pids, store.num_passages)
        deleted = np.array(store.deleted)
        newly = int((~deleted[chosen]).sum())
        deleted[chosen] = True
        save_array(store.folder, "deleted", meta["generation"], deleted)
        _set_files(meta, "deleted")
        _write_ivf(store.folder, meta, np.asarray(store.doclens), ~deleted)
        meta["num_deleted"] = int(deleted.sum())
    return newly


def recluster(
    folder: str | Path,
    *,
    seed: int = 0,
    kmeans_niters: int | None = None,
    device: str | torch.device = "cpu",
    show_progress: bool = False,
) -> ResidualCodec:
    """Train new centroids on a sample of the stored tokens and re-encode every token (on a
    progress bar with ``show_progress``: the long part, tens of minutes at 1M passages).

    The sample follows ColBERTv2's passage sampling; the centroid count follows PLAID's rule
    for the live tokens. Tokens are decompressed with the old codec and compressed with the
    new one, so some precision is lost; re-index from the encoder when the originals exist.
    """
    with _update(folder, device) as (store, meta):
        live = store.live_pids()
        sampled = live[training_pids(len(live), seed)]
        rows = ranges(store.offsets[sampled], store.doclens[sampled])
        sample = store.codec.from_index_space(store.decompress_rows(rows))
        codec = ProductCodec.train(
            sample,
            nbits=meta["nbits"],
            num_centroids=num_centroids(int(store.doclens[live].sum())),
            kmeans_niters=kmeans_niters or meta["kmeans_niters"],
            seed=seed,
            device=device,
        )
        generation = meta["generation"]
        meta["files"]["codec"] = f"codec.{generation}"
        codec.save(store.folder / meta["files"]["codec"])
        _reencode(store, codec, generation, show_progress)
        _set_files(meta, "codes", "residuals", "scales")
        meta["num_centroids"] = codec.num_centroids
        _write_ivf(store.folder, meta, np.asarray(store.doclens), ~np.asarray(store.deleted))
        meta["tokens_at_training"] = meta["num_tokens"]
        meta["sample_tokens"] = int(sample.shape[0])
    return codec


def _reencode(store: LateStore, codec: ResidualCodec, generation: int, show_progress: bool) -> None:
    """Write every token's codes, residual bytes and scale levels under ``codec`` (a newly
    trained one: it keeps levels), block by block."""
    tokens = store.codes.shape[0]
    shape = (tokens, codec.packed_dim - 1)
    with (
        new_array(store.folder, "codes", generation, codec.code_dtype, (tokens,)) as codes,
        new_array(store.folder, "residuals", generation, np.uint8, shape) as residuals,
        atomic_file(store.folder / array_filename("scales", generation)) as scales_path,
        tqdm(total=tokens, desc="re-encoding", unit="token", disable=not show_progress) as bar,
    ):
        scales = NibbleAppender(scales_path)
        for start in range(0, tokens, BLOCK_TOKENS):
            rows = np.arange(start, min(tokens, start + BLOCK_TOKENS))
            vectors = store.codec.from_index_space(store.decompress_rows(rows))
            new_codes, packed = codec.compress(vectors)
            codes[rows] = new_codes.cpu().numpy()
            residuals[rows], levels = split_packed(codec, packed.cpu().numpy())
            scales.append(levels)
            bar.update(len(rows))
        scales.close(expected_tokens=tokens)


def _set_files(meta: dict[str, Any], *names: str) -> None:
    """Point ``meta`` at this generation's file of each named array."""
    meta["files"].update({name: array_filename(name, meta["generation"]) for name in names})


def _write_ivf(folder: Path, meta: dict[str, Any], doclens: np.ndarray, live: np.ndarray) -> None:
    """Rebuild the inverted file of ``live`` pids from the codes ``meta`` names."""
    codes = np.load(folder / meta["files"]["codes"], mmap_mode="r")
    build_ivf(folder, meta["generation"], codes, doclens, live, meta["num_centroids"])
    _set_files(meta, "ivf", "ivf_lengths", "ivf_offsets", "ivf_widths")
    meta["format_version"] = FORMAT_VERSION  # the inverted file is now written as it says


def _append_ivf(
    store: LateStore, meta: dict[str, Any], first: int, lens: np.ndarray, codes: np.ndarray
) -> None:
    """The inverted file with the added passages' (centroid, pid) entries at the end of each
    list (their pids are above every listed one, so lists stay ascending): the old lists
    are decoded and coded again a block at a time, not rebuilt from the codes."""
    centroids = meta["num_centroids"]
    count = first + len(lens)
    pids = np.repeat(np.arange(first, count), lens)
    keys = np.unique(codes.astype(np.int64) * count + pids)
    added_pids = keys % count
    added = np.bincount(keys // count, minlength=centroids)
    added_starts = np.concatenate([[0], np.cumsum(added)])
    old_lengths = np.asarray(store.ivf_lengths, dtype=np.int64)
    lengths = old_lengths + added

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start, stop in pid_blocks(lengths, LIST_BLOCK):
            old = store.lists.read(np.arange(start, stop))
            new = added_pids[added_starts[start] : added_starts[stop]]
            block_lengths = lengths[start:stop]
            ends = np.cumsum(block_lengths)
            merged = np.empty(int(ends[-1]), dtype=np.int64)
            merged[ranges(ends - block_lengths, old_lengths[start:stop])] = old
            merged[ranges(ends - added[start:stop], added[start:stop])] = new
            yield merged, block_lengths

    write_lists(store.folder, meta["generation"], blocks(), centroids)
    _set_files(meta, "ivf", "ivf_lengths", "ivf_offsets", "ivf_widths")


def _append_levels(
    store: LateStore, generation: int, old_tokens: int, levels: np.ndarray | None
) -> None:
    """The scale levels file with ``levels`` after the ``old_tokens`` stored ones."""
    with atomic_file(store.folder / array_filename("scales", generation)) as path:
        scales = NibbleAppender(path)
        scales.extend_packed(store.scales, old_tokens)
        scales.append(levels)
        scales.close(expected_tokens=old_tokens + len(levels))


def _copy(source: np.ndarray, target: np.ndarray) -> None:
    """Copy ``source`` into the leading rows of ``target`` in bounded blocks."""
    for start in range(0, source.shape[0], BLOCK_TOKENS):
        stop = min(source.shape[0], start + BLOCK_TOKENS)
        target[start:stop] = source[start:stop]
