"""What every residual codec offers, and what the codecs share: PLAID's corpus sizing, the
centroids learned by k-means on a sample, and the per-token scale.

A token is stored as its nearest centroid (its code) and a packed residual of
``dim * nbits / 8`` bytes plus its scale: one of 16 levels learned from the sample (half a
byte, which the index keeps apart, two tokens to a byte), or in older indexes a float16.
The codec that writes new indexes is :class:`~odqa.index.late.product.ProductCodec`;
:class:`~odqa.index.late.buckets.BucketCodec` reads indexes written before it.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from odqa.errors import OdqaError
from odqa.index.late.kmeans import FLAT_MAX, CentroidGroups, assign, centroid_groups, kmeans

NBITS = (1, 2, 4, 8)
HELDOUT_FRACTION = 0.05  # ColBERTv2: 5% of the sample, at most 50k tokens, learns the residuals
HELDOUT_MAX = 50_000
SCALE_BYTES = 2  # a float16 scale, in indexes written before the levels
SCALE_LEVELS = 16  # a scale level fits half a byte
LEVEL_ITERATIONS = 20
MAX_POINTS_PER_CENTROID = 256  # faiss's default sub-sampling of k-means training points
MAX_TRAINING_POINTS = 1 << 22  # and at most 4M points (2 GiB float32 at dim 128) in all
MAX_CENTROIDS = 1 << 16  # codes stay uint16; PLAID would take 131,072 from 67M tokens
TYPICAL_DOCLEN = 120  # ColBERTv2 sizes its passage sample as if passages had 120 tokens
MAX_SAMPLE = 1 << 15  # passages that train the codec, at most
CODEC_FILE = "codec.json"
COMPRESS_BLOCK = 1 << 23
"""Floats of tokens compressed at once (65,536 tokens at dim 128; a block holds several
float32 copies). Smaller blocks cost more than they save: two-level assignment loops over
some 256 groups of centroids per block, and 8,192-token blocks compressed 5x slower."""


def num_centroids(num_tokens: int) -> int:
    """The centroid count for a corpus of ``num_tokens`` tokens: PLAID's 2^floor(log2(16
    sqrt n)), capped at :data:`MAX_CENTROIDS` (reached at 16.8M tokens).

    The cap keeps codes in two bytes (with 32.5 bytes of residual and scale and about 1 of
    inverted file, 36 bytes a token in all) and bounds training; ``bench/scale_colbert.py``
    measured what it costs in search.
    """
    plaid = int(2 ** math.floor(math.log2(16 * math.sqrt(max(1, num_tokens)))))
    return min(plaid, MAX_CENTROIDS)


def training_size(num_passages: int) -> int:
    """How many of ``num_passages`` train the codec: ColBERTv2's 16 sqrt(120 n) (all of
    them up to 30,720), at most :data:`MAX_SAMPLE` (k-means takes at most
    :data:`MAX_TRAINING_POINTS` tokens: about 32,768 passages of 128 tokens)."""
    plaid = 1 + int(16 * math.sqrt(TYPICAL_DOCLEN * num_passages))
    return min(num_passages, plaid, MAX_SAMPLE)


def training_pids(num_passages: int, seed: int = 0) -> np.ndarray:
    """The passages whose tokens train the codec (:func:`training_size` of them), sorted."""
    size = training_size(num_passages)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_passages, size=size, replace=False))


def heldout_tokens(sample_tokens: int) -> int:
    """How many of the sample's tokens are held out of k-means to learn the residuals."""
    return max(1, min(int(HELDOUT_FRACTION * sample_tokens), HELDOUT_MAX))


def centroids_trained(num_centroids: int, sample_tokens: int) -> int:
    """The centroids k-means finds: ``num_centroids``, at most one per clustered token."""
    return min(num_centroids, sample_tokens - heldout_tokens(sample_tokens))


def training_memory(sample_tokens: int, dim: int) -> int:
    """Bytes training a codec on ``sample_tokens`` holds at its peak: the sample in float16,
    the float32 copy k-means clusters (at most :data:`MAX_TRAINING_POINTS` and the
    held-out tokens) and k-means' working blocks (measured: about a fifth of that copy)."""
    clustered = min(sample_tokens, MAX_TRAINING_POINTS + HELDOUT_MAX)
    return sample_tokens * dim * 2 + clustered * dim * 5


def check_settings(nbits: int, dim: int) -> None:
    """Refuse an ``nbits`` the codecs cannot pack or a dimension that is not a multiple of 8."""
    if nbits not in NBITS:
        raise OdqaError(f"nbits must be one of {NBITS}, got {nbits}")
    if dim % 8:
        raise OdqaError(f"embedding dim must be a multiple of 8, got {dim}")


def cluster_sample(
    sample: torch.Tensor,
    *,
    num_centroids: int,
    kmeans_niters: int,
    seed: int,
    device: str | torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float16 centroids of ``sample`` (tokens, dim; float16 or float32), and a held-out
    part of it (float32, on ``device``) with its residuals, which the codec's residual
    coding learns from.

    The centroid count is capped at the number of clustered tokens; k-means runs on at
    most 256 points per centroid and :data:`MAX_TRAINING_POINTS` in all.
    """
    if sample.ndim != 2 or sample.shape[0] < 2:
        raise OdqaError("the codec needs a sample of at least 2 token embeddings")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(sample.shape[0], generator=generator)
    heldout_size = heldout_tokens(sample.shape[0])
    k = centroids_trained(num_centroids, sample.shape[0])
    taken = heldout_size + min(MAX_POINTS_PER_CENTROID * k, MAX_TRAINING_POINTS)
    sample = sample[order[:taken]].float()  # only the tokens used are copied, as float32
    heldout, points = sample[:heldout_size], sample[heldout_size:]
    centroids = kmeans(points, k, niters=kmeans_niters, seed=seed, device=device).half()
    heldout = heldout.to(device=device, dtype=torch.float32)
    table = centroids.float()
    return centroids, heldout - table[assign(heldout, table, centroid_groups(table))], heldout


def token_scales(residuals: torch.Tensor) -> torch.Tensor:
    """(n, 1) root mean square of each residual, kept above zero."""
    return residuals.pow(2).mean(dim=-1, keepdim=True).sqrt().clamp_min(1e-8)


def _cosines(
    centroids: torch.Tensor, decoded: torch.Tensor, targets: torch.Tensor, scales: torch.Tensor
) -> torch.Tensor:
    """(n,) cosine of ``centroids + scales * decoded`` with unit ``targets``, row by row."""
    vectors = torch.addcmul(centroids, decoded, scales[:, None])
    return (vectors * targets).sum(-1) / vectors.norm(dim=-1).clamp_min(1e-12)


def fitted_scale_bytes(
    decoded: torch.Tensor, residuals: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """(n, 2) uint8: per row the float16 scale ``s`` under which the re-normalised
    ``centroids + s * decoded`` points closest to the unit token ``targets``, whose
    residual from its centroid is ``residuals``.

    Decompressed tokens are re-normalised, so the direction is all that counts. The
    cosine's stationary point is ``s = (a cd - b cc) / (b cd - a dd)`` with ``a = c.x``,
    ``b = d.x``, ``cc = c.c``, ``cd = c.d``, ``dd = d.d``; where it is not a positive
    number, or rounds to a worse cosine, the least-squares fit of ``s * decoded`` to the
    residual is kept.
    """
    centroids = targets - residuals
    dd = (decoded * decoded).sum(-1)
    cd = (centroids * decoded).sum(-1)
    cc = (centroids * centroids).sum(-1)
    a, b = (centroids * targets).sum(-1), (decoded * targets).sum(-1)
    least_squares = ((decoded * residuals).sum(-1) / dd.clamp_min(1e-12)).half()
    stationary = ((a * cd - b * cc) / (b * cd - a * dd)).half()
    usable = stationary.isfinite() & (stationary > 0)
    stationary = torch.where(usable, stationary, least_squares)
    better = _cosines(centroids, decoded, targets, stationary.float()) > _cosines(
        centroids, decoded, targets, least_squares.float()
    )
    chosen = torch.where(better, stationary, least_squares)
    return chosen.view(torch.uint8).view(-1, SCALE_BYTES)


def read_scales(scale_bytes: torch.Tensor) -> torch.Tensor:
    """(n, 1) float32 scales from their (n, 2) uint8 float16 bytes."""
    return scale_bytes.contiguous().view(torch.float16).float()


def fit_scale_levels(scales: torch.Tensor) -> torch.Tensor:
    """:data:`SCALE_LEVELS` ascending float32 levels for positive ``scales`` (n,): the
    scalar k-means (Lloyd's) of their logarithms, started at its quantiles. On real tokens
    four bits cost 0.0001 of mean cosine to the true token against float16."""
    logs = scales.double().clamp_min(1e-8).log()
    middles = (torch.arange(SCALE_LEVELS, dtype=torch.float64) + 0.5) / SCALE_LEVELS
    levels = torch.quantile(logs, middles)
    for _ in range(LEVEL_ITERATIONS):
        nearest = level_indices(logs, levels)
        sums = torch.zeros(SCALE_LEVELS, dtype=torch.float64).index_add_(0, nearest, logs)
        counts = torch.bincount(nearest, minlength=SCALE_LEVELS)
        levels = torch.where(counts > 0, sums / counts.clamp_min(1), levels).sort().values
    return levels.exp().float()


def level_indices(values: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """(n,) int64: the nearest of the ascending ``levels`` to each of ``values``."""
    middles = (levels[1:] + levels[:-1]) / 2
    return torch.searchsorted(middles.to(values.dtype).contiguous(), values.contiguous())


def scale_level_bytes(scale_bytes: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """(n, 1) uint8: the level (of ascending ``levels``) nearest in logarithm to each
    float16 scale of ``scale_bytes`` (n, 2)."""
    logs = read_scales(scale_bytes)[:, 0].clamp_min(1e-8).log()
    return level_indices(logs, levels.to(logs.device).log()).to(torch.uint8)[:, None]


@dataclass
class ResidualCodec(ABC):
    """Centroids (C, dim) float16 and a way of packing each token's residual in ``nbits``
    per dimension. Vectors live in the codec's index space (for some codecs a rotation of
    the embedding space that keeps inner products): queries go through
    :meth:`to_index_space`, and decompressed vectors come back in it."""

    KIND: ClassVar[str]  # "kind" in codec.json
    ARRAYS: ClassVar[tuple[str, ...]]  # the array fields after ``centroids``, in field order

    centroids: torch.Tensor
    nbits: int

    def __post_init__(self) -> None:
        check_settings(self.nbits, self.dim)
        self.centroids = self.centroids.to(torch.float16)
        self._centroids32 = self.centroids.float()
        self._groups: CentroidGroups | None = None

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @property
    def num_centroids(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def device(self) -> torch.device:
        return self.centroids.device

    @property
    def code_dtype(self) -> type:
        """The smallest stored type for centroid ids: uint16 up to 65,536 centroids."""
        return np.uint16 if self.num_centroids <= 1 << 16 else np.int32

    @property
    @abstractmethod
    def packed_dim(self) -> int:
        """Bytes of packed residual per token."""

    @property
    def scale_nibble(self) -> bool:
        """Whether the last packed byte is a scale level below 16, which an index stores
        apart from the other bytes, two tokens to a byte."""
        return False

    def to_index_space(self, vectors: torch.Tensor) -> torch.Tensor:
        """``vectors`` (..., dim) in the space centroids and decompressed tokens live in."""
        return vectors

    def from_index_space(self, vectors: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`to_index_space`."""
        return vectors

    def centroid_scores(self, vectors: torch.Tensor) -> torch.Tensor:
        """Inner products (..., C) of float32 index-space ``vectors`` (..., dim) with every
        centroid."""
        return vectors @ self._centroids32.T

    def nearest_centroids(self, vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes (n,) int64 of index-space ``vectors`` (n, dim) and their float32 residuals;
        past :data:`~odqa.index.late.kmeans.FLAT_MAX` centroids, assigned in two levels."""
        if self._groups is None and self.num_centroids > FLAT_MAX:
            self._groups = centroid_groups(self._centroids32)
        codes = assign(vectors, self._centroids32, self._groups)
        return codes, vectors - self._centroids32[codes]

    def with_centroids(self, codes: torch.Tensor, residuals: torch.Tensor) -> torch.Tensor:
        """Unit vectors (n, dim): centroid + decoded float32 ``residuals`` (overwritten),
        re-normalised."""
        vectors = residuals.add_(self._centroids32.index_select(0, codes.to(self.device).long()))
        return vectors.div_(vectors.norm(dim=-1, keepdim=True).clamp_min_(1e-12))

    def compress(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes int32 (n,) and packed residuals uint8 (n, packed_dim) of ``embeddings``
        (n, dim) given in the embedding space, on the codec's device; taken
        :data:`COMPRESS_BLOCK` floats at a time, so that memory does not grow with ``n``."""
        block = max(1, COMPRESS_BLOCK // self.dim)
        if len(embeddings) <= block:
            return self.compress_block(embeddings)
        parts = [self.compress_block(part) for part in embeddings.split(block)]
        return torch.cat([codes for codes, _ in parts]), torch.cat([packed for _, packed in parts])

    @abstractmethod
    def compress_block(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`compress` of one block of tokens (it holds several float32 copies)."""

    @abstractmethod
    def decompress(self, codes: torch.Tensor, residuals: torch.Tensor) -> torch.Tensor:
        """Float32 (n, dim) unit vectors in the index space."""

    def options(self) -> dict[str, Any]:
        """Settings kept in ``codec.json`` beyond kind, nbits, dim and centroid count."""
        return {}

    @classmethod
    def read_options(cls, meta: dict[str, Any]) -> dict[str, Any]:
        """The constructor's keyword arguments from ``codec.json``."""
        return {}

    def save(self, folder: Path) -> None:
        """``centroids.npy`` and the codec's other arrays, then ``codec.json``."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("centroids", *self.ARRAYS):
            np.save(folder / f"{name}.npy", getattr(self, name).cpu().numpy())
        meta = {
            "kind": self.KIND,
            "nbits": self.nbits,
            "dim": self.dim,
            "num_centroids": self.num_centroids,
            **self.options(),
        }
        (folder / CODEC_FILE).write_text(json.dumps(meta) + "\n", encoding="utf-8")

    @classmethod
    def load(
        cls, folder: Path, meta: dict[str, Any], device: str | torch.device = "cpu"
    ) -> ResidualCodec:
        """The codec saved in ``folder``, whose ``codec.json`` holds ``meta``."""
        centroids, *arrays = (
            torch.from_numpy(np.load(folder / f"{name}.npy")) for name in ("centroids", *cls.ARRAYS)
        )
        return cls(centroids.to(device), int(meta["nbits"]), *arrays, **cls.read_options(meta))
