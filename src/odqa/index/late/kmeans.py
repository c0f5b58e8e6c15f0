"""Spherical k-means in torch: seeded init, a few Lloyd iterations in batches, any device.

Random choices are drawn on the CPU from a seeded generator and cluster sums are taken by
sort + float64 segment sums (no atomics), so a seed gives the same centroids on every run.

Up to :data:`FLAT_MAX` centroids a point goes to its nearest centroid, found by scoring all
of them. Past that, scoring every centroid costs more than everything else a build does (on
2 cores about 9,000 tokens/s at 65,536 centroids), so points are assigned in two levels:
the centroids are themselves clustered into about sqrt(C) groups (:func:`centroid_groups`),
and a point is scored against the members of its :data:`PROBES` best groups only. The
centroid found is then nearly always the nearest (see ``bench/scale_colbert.py``); when it
is not, it is a close one, and the residual stored next to the code absorbs the gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from odqa.errors import OdqaError
from odqa.models.device import use_bf16

INITS = ("random", "kmeans++")
SCORE_BUDGET = 1 << 22  # scores in one (rows x centroids) block: 8 MiB, near the caches
LLOYD_BLOCK = 65_536  # points per update block (summed in float64: 64 MiB at dim 128);
# 16,384 made each Lloyd step 2.6x slower past FLAT_MAX (a loop over the groups per block)
FLAT_MAX = 1 << 14  # up to this many centroids every one is scored; past it, two levels
PROBES = 4  # groups of centroids searched per point in two-level assignment
GROUP_BLOCK = 65_536  # points per block in two-level assignment


@dataclass
class CentroidGroups:
    """Centroids clustered for two-level assignment: the group centres (G, dim), and per
    group its centroid ids and their vectors transposed (dim, size), in the dtype scored."""

    centres: torch.Tensor
    members: list[torch.Tensor]
    tables: list[torch.Tensor]


def centroid_groups(centroids: torch.Tensor, seed: int = 0) -> CentroidGroups | None:
    """About sqrt(C) groups of the unit ``centroids`` (C, dim), or ``None`` up to
    :data:`FLAT_MAX` centroids (every centroid is then scored)."""
    count = centroids.shape[0]
    if count <= FLAT_MAX:
        return None
    centroids = centroids.float()
    centres = kmeans(centroids, math.isqrt(count), niters=4, seed=seed, device=centroids.device)
    labels = assign(centroids, centres)
    order = torch.argsort(labels, stable=True)
    members = list(order.split(torch.bincount(labels, minlength=centres.shape[0]).tolist()))
    dtype = _score_dtype(centroids.device)
    tables = [centroids[ids].to(dtype).T.contiguous() for ids in members]
    return CentroidGroups(centres.to(dtype), members, tables)


def _score_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if use_bf16(device, "auto") else torch.float32


def assign(
    points: torch.Tensor, centroids: torch.Tensor, groups: CentroidGroups | None = None
) -> torch.Tensor:
    """Index of the highest inner-product centroid for each row, int64, computed in blocks.

    With ``groups`` (see :func:`centroid_groups`) only the members of each row's
    :data:`PROBES` best groups are scored. Where the device computes bfloat16 natively
    (GPUs, CPUs with AVX-512 BF16 or AMX) the products are taken in bfloat16, about twice
    as fast; a near-tie may then pick the other centroid, which the residual stored next to
    the code absorbs. (``max(dim).indices`` is the first maximum, as ``argmax`` is, and
    about three times faster on CPUs.)
    """
    if groups is not None:
        return torch.cat(
            [_assign_grouped(block, centroids, groups) for block in points.split(GROUP_BLOCK)]
            or [torch.empty(0, dtype=torch.long, device=points.device)]
        )
    rows = max(1, SCORE_BUDGET // max(1, centroids.shape[0]))
    dtype = torch.bfloat16 if use_bf16(points.device, "auto") else points.dtype
    table = centroids.to(dtype).T.contiguous()  # a transposed view halves the matmul's speed
    return torch.cat(
        [(block.to(dtype) @ table).max(dim=1).indices for block in points.split(rows)]
        or [torch.empty(0, dtype=torch.long, device=points.device)]
    )


def _assign_grouped(
    points: torch.Tensor, centroids: torch.Tensor, groups: CentroidGroups
) -> torch.Tensor:
    """Two-level assignment of one block: score the members of each row's best groups."""
    points = points.to(groups.centres.dtype)
    probes = min(PROBES, groups.centres.shape[0])
    best = (points @ groups.centres.T).topk(probes, dim=1).indices.flatten()
    order = torch.argsort(best, stable=True)
    counts = torch.bincount(best, minlength=groups.centres.shape[0]).tolist()
    scores = torch.full((len(best),), float("-inf"), device=points.device)
    found = torch.zeros(len(best), dtype=torch.long, device=points.device)
    first = 0
    for members, table, size in zip(groups.members, groups.tables, counts, strict=True):
        if size and len(members):
            pairs = order[first : first + size]
            top = (points[pairs // probes] @ table).max(dim=1)
            scores[pairs], found[pairs] = top.values.float(), members[top.indices]
        first += size
    pick = scores.view(-1, probes).max(dim=1).indices
    return found.view(-1, probes).gather(1, pick[:, None]).flatten()


def kmeans(
    points: torch.Tensor,
    k: int,
    *,
    niters: int = 4,
    seed: int = 0,
    init: Literal["random", "kmeans++"] = "random",
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """``k`` unit-norm centroids (float32, on ``device``) of unit-norm ``points`` (n, dim).

    ``random`` picks ``k`` distinct points (as faiss does); ``kmeans++`` spreads them out
    but takes ``k`` sequential passes, so keep it for small ``k``. A centroid left without
    points keeps its previous position.
    """
    if init not in INITS:
        raise OdqaError(f"k-means init must be one of {INITS}, got {init!r}")
    count = points.shape[0]
    if not 1 <= k <= count:
        raise OdqaError(f"k-means needs 1 <= k <= number of points ({count}), got k={k}")
    points = points.to(device=device, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    if init == "random":
        chosen = torch.randperm(count, generator=generator)[:k]
    else:
        chosen = _kmeans_plus_plus(points, k, generator)
    centroids = points[chosen.to(points.device)].clone()
    for _ in range(niters):
        centroids = _lloyd_step(points, centroids)
    return torch.nn.functional.normalize(centroids, dim=1)


def _kmeans_plus_plus(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """Seeds drawn with probability proportional to squared distance to the nearest seed."""
    count = points.shape[0]
    chosen = [int(torch.randint(count, (1,), generator=generator))]
    nearest = (2 - 2 * points @ points[chosen[0]]).clamp_min(0)
    for _ in range(1, k):
        weights = nearest.double().cpu()
        if float(weights.sum()) <= 0:  # every point sits on a seed: pick uniformly
            weights = torch.ones(count, dtype=torch.float64)
        pick = int(torch.multinomial(weights, 1, generator=generator))
        chosen.append(pick)
        nearest = torch.minimum(nearest, (2 - 2 * points @ points[pick]).clamp_min(0))
    return torch.tensor(chosen)


def _lloyd_step(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """One assignment + update pass over blocks of points, summed in a fixed order."""
    k, dim = centroids.shape
    groups = centroid_groups(centroids)
    sums = torch.zeros(k, dim, dtype=torch.float64, device=points.device)
    counts = torch.zeros(k, dtype=torch.long, device=points.device)
    for block in points.split(LLOYD_BLOCK):
        labels = assign(block, centroids, groups)
        block_counts = torch.bincount(labels, minlength=k)
        grouped = block[torch.argsort(labels, stable=True)].double()
        sums += torch.segment_reduce(grouped, "sum", lengths=block_counts)
        counts += block_counts
    moved = torch.nn.functional.normalize(sums.float(), dim=1)
    return torch.where((counts > 0)[:, None], moved, centroids)
