"""Exact MaxSim: the scoring function, top-k helpers, and an uncompressed float16 store.

MaxSim(q, d) = sum over q's masked-in tokens of the max over d's tokens of the inner
product. A query with no tokens scores 0; a passage with no tokens scores -inf.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from odqa.errors import InputError

SCORE_BUDGET = 1 << 24  # similarity floats materialised per block of passages (64 MiB)

Passages = Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]]


def maxsim(
    Q: torch.Tensor, qmask: torch.Tensor, D: torch.Tensor, dmask: torch.Tensor
) -> torch.Tensor:
    """Scores (nq, nd) of queries (nq, L, dim) against padded passages (nd, Ld, dim)."""
    nq, length, dim = Q.shape
    Q, D = Q.float(), D.to(Q.device)
    qmask, dmask = qmask.to(Q.device).bool(), dmask.to(Q.device).bool()
    step = max(1, SCORE_BUDGET // max(1, nq * length * D.shape[1]))
    blocks = []
    for start in range(0, D.shape[0], step):
        block, mask = D[start : start + step].float(), dmask[start : start + step]
        sim = (Q.reshape(-1, dim) @ block.reshape(-1, dim).T).view(nq, length, *mask.shape)
        best = sim.masked_fill(~mask[None, None], float("-inf")).amax(dim=-1)
        blocks.append(torch.where(qmask[..., None], best, 0).sum(dim=1))
    return torch.cat(blocks, dim=1) if blocks else torch.zeros(nq, 0, device=Q.device)


def padded(embeddings: torch.Tensor, doclens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenated token vectors and their doclens as padded passages ``(n, Ld, dim)`` and
    their mask ``(n, Ld)``."""
    lens = doclens.numpy()
    width = max(1, int(lens.max())) if len(lens) else 1
    D = embeddings.new_zeros(len(lens), width, embeddings.shape[1])
    dmask = torch.from_numpy(np.arange(width)[None, :] < lens[:, None])
    D[dmask] = embeddings
    return D, dmask


def check_queries(
    Q: torch.Tensor, qmask: torch.Tensor, dim: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated queries as float32 and bool on ``device``."""
    if Q.ndim != 3 or Q.shape[2] != dim:
        raise InputError(f"queries must have shape (nq, L, {dim}), got {tuple(Q.shape)}")
    if tuple(qmask.shape) != tuple(Q.shape[:2]):
        raise InputError(f"qmask must have shape {tuple(Q.shape[:2])}, got {tuple(qmask.shape)}")
    return Q.to(device=device, dtype=torch.float32), qmask.to(device=device, dtype=torch.bool)


def check_pids(pids: Sequence[int] | np.ndarray, num_passages: int) -> np.ndarray:
    """``pids`` as int64 in their order, each checked to be in ``[0, num_passages)``."""
    array = np.asarray(pids, dtype=np.int64).reshape(-1)
    if len(array) and (array.min() < 0 or array.max() >= num_passages):
        raise InputError(f"pids must be in [0, {num_passages}), got {array.min()} .. {array.max()}")
    return array


def to_results(pids: torch.Tensor, scores: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(nq, k) int64 pids and float32 scores as numpy, padded with -1 and -inf."""
    out_pids = np.full((pids.shape[0], k), -1, dtype=np.int64)
    out_scores = np.full((pids.shape[0], k), -np.inf, dtype=np.float32)
    width = min(k, pids.shape[1])
    out_pids[:, :width] = pids[:, :width].cpu().numpy()
    out_scores[:, :width] = scores[:, :width].cpu().numpy()
    out_pids[~np.isfinite(out_scores)] = -1
    return out_pids, out_scores


def exhaustive_topk(
    Q: torch.Tensor,
    qmask: torch.Tensor,
    k: int,
    pids: np.ndarray,
    doclens: np.ndarray,
    passages: Passages,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` of ``pids`` for each query, scoring blocks of ``passages(pids)``."""
    nq, length = qmask.shape
    width = max(1, int(doclens[pids].max(initial=0)))
    step = max(1, SCORE_BUDGET // max(1, nq * length * width))
    blocks = (
        (block, maxsim(Q, qmask, *passages(block)))
        for block in (pids[start : start + step] for start in range(0, len(pids), step))
    )
    return running_topk(blocks, qmask, k)


def running_topk(
    blocks: Iterable[tuple[np.ndarray, torch.Tensor]], qmask: torch.Tensor, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of blocks of (pids, their scores (nq, len(pids))) for each query."""
    nq = qmask.shape[0]
    best_scores = torch.full((nq, 0), float("-inf"), device=qmask.device)
    best_pids = torch.zeros((nq, 0), dtype=torch.long, device=qmask.device)
    for block, block_scores in blocks:
        scores = torch.cat([best_scores, block_scores], dim=1)
        candidates = torch.cat(
            [best_pids, torch.from_numpy(block).to(qmask.device).expand(nq, -1)], dim=1
        )
        best_scores, order = scores.topk(min(k, scores.shape[1]), dim=1)
        best_pids = candidates.gather(1, order)
    empty = ~qmask.any(dim=1)
    best_scores[empty] = float("-inf")
    return to_results(best_pids, best_scores, k)


class ExactStore:
    """Uncompressed float16 token embeddings, searched by exact MaxSim.

    For small collections, and as the reference the compressed index is measured against.
    """

    def __init__(
        self,
        embeddings: torch.Tensor,
        doclens: torch.Tensor,
        device: str | torch.device = "cpu",
    ) -> None:
        lens = np.asarray(torch.as_tensor(doclens).cpu(), dtype=np.int64).reshape(-1)
        if embeddings.ndim != 2 or (lens < 0).any() or int(lens.sum()) != embeddings.shape[0]:
            raise InputError("embeddings must be (tokens, dim) and doclens >= 0 must sum to tokens")
        self.device = torch.device(device)
        self.embeddings = embeddings.to(device=self.device, dtype=torch.float16)
        self.doclens = lens
        self.offsets = np.cumsum(lens) - lens

    @property
    def num_passages(self) -> int:
        return len(self.doclens)

    def passages(self, pids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded float32 (len(pids), max doclen, dim) embeddings and their mask."""
        lens = self.doclens[pids]
        columns = np.arange(max(1, int(lens.max(initial=0))))
        mask = columns < lens[:, None]
        rows = torch.from_numpy(np.where(mask, self.offsets[pids][:, None] + columns, 0))
        mask_t = torch.from_numpy(mask).to(self.device)
        padded = self.embeddings[rows.to(self.device)].float()
        return padded.masked_fill(~mask_t[..., None], 0), mask_t

    def search(
        self,
        Q: torch.Tensor,
        qmask: torch.Tensor,
        k: int,
        *,
        subset: Sequence[int] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top ``k`` pids (nq, k) and scores; -1 / -inf where fewer passages match."""
        Q, qmask = check_queries(Q, qmask, self.embeddings.shape[1], self.device)
        pids = np.flatnonzero(self.doclens > 0)
        if subset is not None:
            pids = np.intersect1d(pids, check_pids(subset, self.num_passages))
        return exhaustive_topk(Q, qmask, k, pids, self.doclens, self.passages)


def exact_search(
    Q: torch.Tensor,
    qmask: torch.Tensor,
    embeddings: torch.Tensor,
    doclens: torch.Tensor,
    k: int,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact MaxSim top ``k`` over uncompressed passages; see :class:`ExactStore`."""
    return ExactStore(embeddings, doclens, device).search(Q, qmask, k)
