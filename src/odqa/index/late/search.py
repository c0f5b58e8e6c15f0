"""PLAID search over a compressed late-interaction index.

Four stages per query: (1) each query token's top ``ncells`` centroids name the candidate
passages (the union of their inverted lists); (2) candidates are scored from centroid
scores alone, with centroids no query token scores ``centroid_score_threshold`` on set to
0, and the best ``ndocs`` kept; (3) the same without pruning keeps ``ndocs / 4``; (4) exact
MaxSim on the decompressed residuals ranks the survivors. Queries are processed together:
every stage scores a flat list of (query, passage) pairs, in blocks of bounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from odqa.errors import InputError
from odqa.index.late.exact import (
    aligned_maxsim,
    check_pids,
    check_queries,
    exhaustive_topk,
    to_results,
)
from odqa.index.late.storage import LateStore
from odqa.index.settings import PlaidSettings

QUERY_GROUP = 32  # queries whose (centroids x tokens) score tables are held at once
PAIR_BLOCK = 1 << 20  # floats per block of (query, passage) pairs: 4 MiB stays in cache


class LateIndex:
    """A saved late-interaction index, searched on ``device`` ("cpu", "cuda", ...)."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.store = LateStore.load(folder, self.device)
        self.codec = self.store.codec

    @property
    def meta(self) -> dict[str, Any]:
        return self.store.meta

    @property
    def num_passages(self) -> int:
        return self.store.num_passages

    def passages(self, pids: Sequence[int] | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Decompressed passages, padded (len(pids), max doclen, dim), and their token mask."""
        vectors, mask = self.store.decompressed(check_pids(pids, self.num_passages))
        return self.codec.from_index_space(vectors), mask

    def exhaustive(
        self,
        Q: torch.Tensor,
        qmask: torch.Tensor,
        k: int,
        *,
        subset: Sequence[int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact MaxSim over every live (decompressed) passage: pids (nq, k), scores (nq, k)."""
        _check_k(k)
        Q, qmask = self._queries(Q, qmask)
        pids = self._live(subset)
        return exhaustive_topk(Q, qmask, k, pids, self.store.doclens, self.store.decompressed)

    def search(
        self,
        Q: torch.Tensor,
        qmask: torch.Tensor,
        k: int,
        *,
        ncells: int | None = None,
        centroid_score_threshold: float | None = None,
        ndocs: int | None = None,
        subset: Sequence[int] | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """PLAID top ``k``: pids (nq, k) int64 padded with -1, scores (nq, k) padded with -inf.

        Unset parameters take :func:`plaid_defaults` of ``k`` (see :class:`PlaidSettings`).
        With ``subset``, its live pids replace stage 1's candidates (as ColBERTv2's ``pids=``
        does) and go through 2-4. With ``allowed`` (a boolean per pid: a filter), stage 1's
        candidates are cut to the allowed ones; where that leaves a query fewer than ``k``,
        every allowed live pid is its group's candidate, so ``k`` come back when ``k`` exist.
        """
        _check_k(k)
        settings = PlaidSettings(ncells, centroid_score_threshold, ndocs)
        ncells, threshold, ndocs = settings.resolve(k)
        ncells = min(ncells, self.codec.num_centroids)
        Q, qmask = self._queries(Q, qmask)
        candidates = None if subset is None else self._live(subset)
        within = None
        if allowed is not None and candidates is None:
            pids = self._live(np.flatnonzero(allowed))
            mask = np.zeros(self.num_passages, bool)
            mask[pids] = True
            within = (mask, pids)
        results = [
            self._search_group(
                Q[start : start + QUERY_GROUP],
                qmask[start : start + QUERY_GROUP],
                k,
                ncells,
                threshold,
                ndocs,
                candidates,
                within,
            )
            for start in range(0, Q.shape[0], QUERY_GROUP)
        ]
        if not results:
            return to_results(torch.zeros(0, 0), torch.zeros(0, 0), k)
        return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])

    def _queries(self, Q: torch.Tensor, qmask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Checked queries on the device, in the codec's index space."""
        Q, qmask = check_queries(Q, qmask, self.codec.dim, self.device)
        return self.codec.to_index_space(Q), qmask

    def _live(self, subset: Sequence[int] | None) -> np.ndarray:
        pids = self.store.live_pids()
        if subset is None:
            return pids
        return np.intersect1d(pids, check_pids(subset, self.num_passages))

    def _search_group(
        self,
        Q: torch.Tensor,
        qmask: torch.Tensor,
        k: int,
        ncells: int,
        threshold: float,
        ndocs: int,
        allowed: np.ndarray | None,
        within: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        nq = Q.shape[0]
        scores = self.codec.centroid_scores(Q).transpose(1, 2)  # (nq, C, L)
        scores = scores.masked_fill(~qmask[:, None, :], 0)
        asking = torch.nonzero(qmask.any(dim=1)).flatten().cpu().numpy()
        if allowed is None:
            query, pids = self._candidates(scores, qmask, ncells)
            if within is not None:
                mask, allowed = within
                kept = mask[pids]
                query, pids = query[kept], pids[kept]
                short = np.bincount(query, minlength=nq)[asking] < min(k, len(allowed))
                if not short.any():
                    allowed = None
        if allowed is not None:
            query = np.repeat(asking, len(allowed))
            pids = np.tile(allowed, len(asking))
        query_t = torch.from_numpy(query).to(self.device)
        best = scores.masked_fill(~qmask[:, None, :], float("-inf")).amax(dim=2)
        full = _with_padding_row(scores)
        pruned = _with_padding_row(scores.masked_fill((best < threshold)[..., None], 0))
        for table, keep in ((pruned, max(ndocs, k)), (full, max(ndocs // 4, k))):
            if _most_per_query(query_t, nq) > keep:
                approx = self._centroid_scores(table, query_t, pids)
                kept = _top_per_query(query_t, approx, nq, keep)
                query_t, pids = query_t[kept], pids[kept.cpu().numpy()]
        exact = self._exact_scores(Q, qmask, query_t, pids)
        chosen = _top_per_query(query_t, exact, nq, k)
        table = torch.full((nq, k), float("-inf"), device=self.device)
        pid_table = torch.full((nq, k), -1, dtype=torch.long, device=self.device)
        rank = _rank_in_query(query_t[chosen], nq)
        table[query_t[chosen], rank] = exact[chosen]
        pid_table[query_t[chosen], rank] = torch.from_numpy(pids).to(self.device)[chosen]
        return to_results(pid_table, table, k)

    def _candidates(
        self, scores: torch.Tensor, qmask: torch.Tensor, ncells: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stage 1: distinct (query, pid) pairs, sorted, from each token's top cells."""
        count, centroids = self.num_passages, scores.shape[1]
        cells = scores.topk(ncells, dim=1).indices  # (nq, ncells, L)
        query = torch.arange(scores.shape[0], device=self.device)[:, None, None]
        keys = (query * centroids + cells)[qmask[:, None, :].expand_as(cells)]
        keys = torch.unique(keys).cpu().numpy()
        pids, owner = self.store.ivf_lists(keys % centroids)
        pairs = np.unique((keys // centroids)[owner] * count + pids)
        return pairs // count, pairs % count

    def _centroid_scores(
        self, table: torch.Tensor, query: torch.Tensor, pids: np.ndarray
    ) -> torch.Tensor:
        """Stages 2-3: MaxSim with each token replaced by its centroid's row in ``table``."""
        nq, rows, length = table.shape
        flat = table.reshape(nq * rows, length)
        width = max(1, int(self.store.doclens[pids].max(initial=0)))
        step = max(1, PAIR_BLOCK // (width * length))
        out = []
        for start in range(0, len(pids), step):
            codes = self.store.codes_padded(pids[start : start + step], pad=rows - 1)
            index = query[start : start + step, None] * rows + torch.from_numpy(codes).to(
                self.device
            )
            gathered = flat.index_select(0, index.flatten()).view(*index.shape, length)
            out.append(gathered.amax(dim=1).sum(dim=-1))
        return torch.cat(out) if out else torch.zeros(0, device=self.device)

    def _exact_scores(
        self, Q: torch.Tensor, qmask: torch.Tensor, query: torch.Tensor, pids: np.ndarray
    ) -> torch.Tensor:
        """Stage 4: MaxSim of each (query, pid) pair on decompressed residuals."""
        width = max(1, int(self.store.doclens[pids].max(initial=0)))
        step = max(1, PAIR_BLOCK // (width * max(Q.shape[1], self.codec.dim)))
        out = []
        for start in range(0, len(pids), step):
            D, dmask = self.store.decompressed(pids[start : start + step])
            block = query[start : start + step]
            out.append(aligned_maxsim(Q[block], qmask[block], D, dmask))
        return torch.cat(out) if out else torch.zeros(0, device=self.device)


def _check_k(k: int) -> None:
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")


def _with_padding_row(scores: torch.Tensor) -> torch.Tensor:
    """(nq, C+1, L): a last row of -inf that padded token positions look up."""
    padding = scores.new_full((scores.shape[0], 1, scores.shape[2]), float("-inf"))
    return torch.cat([scores, padding], dim=1)


def _most_per_query(query: torch.Tensor, nq: int) -> int:
    return int(torch.bincount(query, minlength=nq).max()) if len(query) else 0


def _rank_in_query(query: torch.Tensor, nq: int) -> torch.Tensor:
    """Position of each pair within its query's run (pairs grouped by query)."""
    counts = torch.bincount(query, minlength=nq)
    starts = torch.cumsum(counts, dim=0) - counts
    return torch.arange(len(query), device=query.device) - starts[query]


def _top_per_query(query: torch.Tensor, scores: torch.Tensor, nq: int, keep: int) -> torch.Tensor:
    """Indices of each query's best ``keep`` pairs, best first, still grouped by query."""
    if not len(query):
        return torch.zeros(0, dtype=torch.long, device=query.device)
    counts = torch.bincount(query, minlength=nq)
    width = int(counts.max())
    table = scores.new_full((nq, width), float("-inf"))
    table[query, _rank_in_query(query, nq)] = scores
    top = table.topk(min(keep, width), dim=1).indices
    valid = top < counts[:, None]
    starts = torch.cumsum(counts, dim=0) - counts
    return (top + starts[:, None])[valid]
