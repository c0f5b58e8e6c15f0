"""MaxSim over the stored tokens of passages, without padding, a cache-sized block at a time.

Passages are read as one flat run of their real tokens (``owner`` says whose each is), so a
300-token passage costs 300 rows and a 30-token one 30, whatever else is in the block; each
token's best score per query token is kept with a scatter-max. Blocks hold about
:data:`TOKEN_BLOCK` tokens, so their decompressed vectors stay in the caches and no
allocation is large enough to go back to the system (which would fault its pages in again).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from odqa.index.late.storage import LateStore, pid_blocks, ranges

TOKEN_BLOCK = 1 << 13  # tokens decompressed at once: 4 MiB of float32 at dim 128
CODE_BLOCK = 1 << 16  # tokens whose centroid ids are read at once for centroid-only scores
SCORE_BLOCK = 1 << 22  # (token x query token) scores of one block: 16 MiB

TokenScorer = Callable[[int, np.ndarray, torch.Tensor], torch.Tensor]


def token_blocks(
    store: LateStore, pids: np.ndarray, budget: int
) -> Iterator[tuple[int, int, np.ndarray, torch.Tensor]]:
    """Per block of about ``budget`` tokens: the range ``[start, stop)`` of ``pids``, the
    token rows of those passages, and each row's passage within the block (from 0)."""
    lens = store.doclens[pids]
    for start, stop in pid_blocks(lens, budget):
        rows = ranges(store.offsets[pids[start:stop]], lens[start:stop])
        owner = np.repeat(np.arange(stop - start), lens[start:stop])
        yield start, stop, rows, torch.from_numpy(owner).to(store.codec.device)


def segment_max(values: torch.Tensor, owner: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out`` (pairs, width) raised to the max of the ``values`` rows each pair owns."""
    index = owner[:, None].expand(-1, values.shape[1])
    return out.scatter_reduce_(0, index, values, "amax")


def exact_scores(
    store: LateStore, Q: torch.Tensor, qmask: torch.Tensor, pids: np.ndarray
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Per block of ``pids``: its range and the MaxSim (nq, stop - start) of every query."""
    nq, length, dim = Q.shape
    flat_queries = Q.reshape(-1, dim).T.contiguous()
    budget = max(1, min(TOKEN_BLOCK, SCORE_BLOCK // (nq * length)))
    for start, stop, rows, owner in token_blocks(store, pids, budget):
        best = torch.full((stop - start, nq * length), float("-inf"), device=Q.device)
        segment_max(store.decompress_rows(rows) @ flat_queries, owner, best)
        best = best.view(stop - start, nq, length)
        yield start, stop, torch.where(qmask[None], best, 0).sum(dim=-1).T


def pair_scores(
    store: LateStore,
    score_tokens: TokenScorer,
    query: torch.Tensor,
    pids: np.ndarray,
    survives: torch.Tensor | None = None,
) -> torch.Tensor:
    """MaxSim (pairs,) of query ``query[i]`` against passage ``pids[i]`` (pairs grouped by
    query), each token scored by ``score_tokens(q, rows, codes)`` (tokens, L).

    With ``survives`` (nq, C) bool, a token whose centroid does not survive scores 0 on
    every query token and is not scored (PLAID's pruning: most tokens, for most queries).
    Blocks of passages are scored on as many threads as torch uses.
    """
    out = torch.empty(len(pids), device=query.device)
    asked = query.cpu().numpy()
    firsts = np.flatnonzero(np.diff(asked, prepend=-1))
    blocks = []
    for start, stop in zip(firsts, [*firsts[1:], len(asked)], strict=True):
        q = int(asked[start])
        kept = None if survives is None else survives[q].cpu().numpy()
        lens = store.doclens[pids[start:stop]]
        for first, last in pid_blocks(lens, CODE_BLOCK):
            blocks.append((q, slice(start + first, start + last), kept))

    def score(block: tuple[int, slice, np.ndarray | None]) -> None:
        q, pairs, kept = block
        out[pairs] = _maxsim(store, score_tokens, q, pids[pairs], kept)

    workers = min(len(blocks), torch.get_num_threads())
    if workers > 1:
        list(_pool(workers).map(score, blocks))
    else:
        for block in blocks:
            score(block)
    return out


@functools.cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="odqa-maxsim")


os.register_at_fork(after_in_child=_pool.cache_clear)  # a forked child has none of the threads


def _maxsim(
    store: LateStore,
    score_tokens: TokenScorer,
    q: int,
    pids: np.ndarray,
    survives: np.ndarray | None,
) -> torch.Tensor:
    """One query's MaxSim (len(pids),) with tokens scored by ``score_tokens``."""
    device = store.codec.device
    lens = store.doclens[pids]
    rows = ranges(store.offsets[pids], lens)
    codes = np.take(store.codes, rows).astype(np.int64)
    floor = torch.full((len(pids), 1), float("-inf"), device=device)  # a passage's least max
    if survives is None:
        owner = np.repeat(np.arange(len(pids)), lens)
    else:
        kept = np.flatnonzero(survives.take(codes, mode="clip"))
        owner = np.searchsorted(np.cumsum(lens), kept, side="right")
        pruned = np.bincount(owner, minlength=len(pids)) < lens
        floor[torch.from_numpy(pruned).to(device)] = 0  # a pruned token scores 0
        rows, codes = rows[kept], codes[kept]
    owner_t = torch.from_numpy(owner).to(device)
    codes_t = torch.from_numpy(codes).to(device)
    best = floor
    for first in range(0, len(rows), TOKEN_BLOCK):
        part = slice(first, first + TOKEN_BLOCK)
        scores = score_tokens(q, rows[part], codes_t[part])
        if best.shape[1] != scores.shape[1]:
            best = best.expand(-1, scores.shape[1]).contiguous()
        segment_max(scores, owner_t[part], best)
    return best.sum(dim=-1)


def exact_scorer(store: LateStore, Q: torch.Tensor, qmask: torch.Tensor) -> TokenScorer:
    """Tokens scored on their decompressed vectors; masked-out query tokens score 0."""

    def score(q: int, rows: np.ndarray, codes: torch.Tensor) -> torch.Tensor:
        return (store.decompress_rows(rows, codes) @ Q[q].T).masked_fill_(~qmask[q], 0)

    return score


def centroid_scorer(table: torch.Tensor) -> TokenScorer:
    """Tokens scored by their centroid's row of ``table`` (nq, C, L)."""

    def score(q: int, rows: np.ndarray, codes: torch.Tensor) -> torch.Tensor:
        return table[q].index_select(0, codes)

    return score
