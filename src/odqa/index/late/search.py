"""PLAID search over a compressed late-interaction index.

Four stages per query, each on fewer passages and closer to exact MaxSim:
(1) each query token's top ``ncells`` centroids name the candidate passages (the union of
their inverted lists); each candidate's votes are the centroid scores of the query tokens
whose cells list it, and the best-voted ``4 * ndocs`` go on; (2) MaxSim with every token
replaced by its centroid, centroids no query token scores ``centroid_score_threshold`` on
counted as 0 (only the few per cent of tokens that survive are looked up), keeps ``ndocs``;
(3) MaxSim on the decompressed vectors of the tokens whose centroids score at least
``centroid_score_threshold - 0.1``, the others counted as 0, keeps ``min(ndocs / 4, 4k)``;
(4) exact MaxSim on all their decompressed tokens ranks them. Queries are processed
together: every stage scores a flat list of (query, passage) pairs, a block at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from odqa.errors import InputError
from odqa.index.late.exact import check_pids, check_queries, running_topk, to_results
from odqa.index.late.flat import centroid_scorer, exact_scorer, exact_scores, pair_scores
from odqa.index.late.storage import LateStore
from odqa.index.settings import PlaidSettings

QUERY_GROUP = 32  # queries whose (centroids x tokens) score tables are held at once
EXACT_MARGIN = 0.1  # stage 3 scores exactly the tokens of centroids this far below the threshold
CANDIDATES_PER_NDOC = 4  # stage 1 keeps the best-voted 4 * ndocs candidates of each query
EXACT_PER_RESULT = 4  # stage 3 keeps at most this many passages per result for stage 4


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
        scored = exact_scores(self.store, Q, qmask, pids)
        return running_topk(((pids[a:b], scores) for a, b, scores in scored), qmask, k)

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

        Unset parameters take :func:`plaid_defaults` of ``k`` and the passage count
        (see :class:`PlaidSettings`).
        With ``subset``, its live pids replace stage 1's candidates (as ColBERTv2's ``pids=``
        does) and go through 2-4. With ``allowed`` (a boolean per pid: a filter), stage 1's
        candidates are cut to the allowed ones; where that leaves a query fewer than ``k``,
        every allowed live pid is its group's candidate, so ``k`` come back when ``k`` exist.
        """
        _check_k(k)
        settings = PlaidSettings(ncells, centroid_score_threshold, ndocs)
        ncells, threshold, ndocs = settings.resolve(k, self.num_passages)
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
        per_token = self.codec.centroid_scores(Q)  # (nq, L, C)
        scores = per_token.masked_fill(~qmask[..., None], 0).transpose(1, 2).contiguous()
        query, pids, votes = self._pairs(per_token, qmask, k, ncells, allowed, within)
        query_t = torch.from_numpy(query).to(self.device)
        cap = CANDIDATES_PER_NDOC * max(ndocs, k)
        if votes is not None and _most_per_query(query_t, nq) > cap:
            kept = _top_per_query(query_t, torch.from_numpy(votes).to(self.device), nq, cap)
            kept = kept.sort().values  # pid order: passages read in the order they are stored
            query_t, pids = query_t[kept], pids[kept.cpu().numpy()]
        best = per_token.masked_fill(~qmask[..., None], float("-inf")).amax(dim=1)  # (nq, C)
        exact_tokens = exact_scorer(self.store, Q, qmask)
        stages = (
            (centroid_scorer(scores), threshold, max(ndocs, k)),
            (exact_tokens, threshold - EXACT_MARGIN, max(min(ndocs // 4, EXACT_PER_RESULT * k), k)),
        )
        for scorer, cutoff, keep in stages:
            if _most_per_query(query_t, nq) > keep:
                approx = pair_scores(self.store, scorer, query_t, pids, best >= cutoff)
                kept = _top_per_query(query_t, approx, nq, keep).sort().values
                query_t, pids = query_t[kept], pids[kept.cpu().numpy()]
        exact = pair_scores(self.store, exact_tokens, query_t, pids)
        chosen = _top_per_query(query_t, exact, nq, k)
        table = torch.full((nq, k), float("-inf"), device=self.device)
        pid_table = torch.full((nq, k), -1, dtype=torch.long, device=self.device)
        rank = _rank_in_query(query_t[chosen], nq)
        table[query_t[chosen], rank] = exact[chosen]
        pid_table[query_t[chosen], rank] = torch.from_numpy(pids).to(self.device)[chosen]
        return to_results(pid_table, table, k)

    def _pairs(
        self,
        per_token: torch.Tensor,
        qmask: torch.Tensor,
        k: int,
        ncells: int,
        allowed: np.ndarray | None,
        within: tuple[np.ndarray, np.ndarray] | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The (query, pid) pairs stages 2-4 score, grouped by query, and their stage-1
        votes (None where the pairs are every allowed pid of each query)."""
        nq = per_token.shape[0]
        asking = torch.nonzero(qmask.any(dim=1)).flatten().cpu().numpy()
        if allowed is None:
            query, pids, votes = self._candidates(per_token, qmask, ncells)
            if within is None:
                return query, pids, votes
            mask, allowed = within
            kept = mask[pids]
            query, pids, votes = query[kept], pids[kept], votes[kept]
            if not (np.bincount(query, minlength=nq)[asking] < min(k, len(allowed))).any():
                return query, pids, votes
        return np.repeat(asking, len(allowed)), np.tile(allowed, len(asking)), None

    def _candidates(
        self, per_token: torch.Tensor, qmask: torch.Tensor, ncells: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage 1: distinct (query, pid) pairs, sorted, from each token's top cells, and
        each pair's votes: the centroid scores of the query tokens whose cells list it."""
        count, centroids = self.num_passages, per_token.shape[2]
        top = per_token.topk(ncells, dim=2)  # (nq, L, ncells)
        query = torch.arange(per_token.shape[0], device=self.device)[:, None, None]
        active = qmask[..., None].expand_as(top.indices)
        keys, where = torch.unique((query * centroids + top.indices)[active], return_inverse=True)
        weights = torch.zeros(len(keys), device=self.device)
        weights.index_add_(0, where, top.values[active])
        keys, weights = keys.cpu().numpy(), weights.cpu().numpy()
        pids, owner = self.store.ivf_lists(keys % centroids)
        pairs, which = np.unique((keys // centroids)[owner] * count + pids, return_inverse=True)
        votes = np.bincount(which, weights=weights[owner], minlength=len(pairs))
        return pairs // count, pairs % count, votes.astype(np.float32)


def _check_k(k: int) -> None:
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")


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
