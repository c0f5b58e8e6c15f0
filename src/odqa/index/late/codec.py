"""ColBERTv2 residual compression: a centroid id plus ``nbits`` per dimension per token.

A token is stored as its nearest centroid and, for each dimension, the bucket its residual
(token - centroid) falls in. Each dimension has its own buckets, learned on the residuals of a
held-out sample: cutoffs and decoded values start at that dimension's quantiles (ColBERTv2's
rule, which it applies to all dimensions at once) and are refined by Lloyd-Max iterations
(each value the mean of its bucket, each cutoff halfway between values), which lowers the
squared error. Each token's residual is first divided by its own scale (its root mean square),
so the buckets fit tokens near their centroid as well as tokens far from it; the scale that
best fits the decoded residual (least squares) is kept as a float16 in two more bytes. Indexes
written before either (one set of buckets for all dimensions, no scale) still load.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from odqa.errors import IndexFormatError, OdqaError
from odqa.index.late.kmeans import assign, kmeans

NBITS = (1, 2, 4, 8)
HELDOUT_FRACTION = 0.05  # ColBERTv2: 5% of the sample, at most 50k tokens, learns the buckets
HELDOUT_MAX = 50_000
LLOYD_ITERATIONS = 20
SCALE_BYTES = 2
MAX_POINTS_PER_CENTROID = 256  # faiss's default sub-sampling of k-means training points
TYPICAL_DOCLEN = 120  # ColBERTv2 sizes its passage sample as if passages had 120 tokens
CODEC_FILE = "codec.json"


def num_centroids(num_tokens: int) -> int:
    """PLAID's centroid count for a corpus of ``num_tokens`` tokens: 2^floor(log2(16 sqrt n))."""
    return int(2 ** math.floor(math.log2(16 * math.sqrt(max(1, num_tokens)))))


def training_pids(num_passages: int, seed: int = 0) -> np.ndarray:
    """The passages whose tokens train the codec, sorted: ColBERTv2's 16 sqrt(120 n) of them."""
    size = min(num_passages, 1 + int(16 * math.sqrt(TYPICAL_DOCLEN * num_passages)))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_passages, size=size, replace=False))


def lloyd_max(
    values: torch.Tensor, buckets: int, iterations: int = LLOYD_ITERATIONS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column scalar quantiser of ``values`` (n, dim): cutoffs (dim, buckets-1) and
    decoded values (dim, buckets), from quantiles refined by Lloyd-Max iterations."""
    columns = values.T.contiguous().double()  # (dim, n)
    levels = torch.arange(buckets, dtype=torch.float64)
    weights = torch.quantile(columns, (levels + 0.5) / buckets, dim=1).T.contiguous()
    cutoffs = torch.quantile(columns, levels[1:] / buckets, dim=1).T.contiguous()
    for _ in range(iterations):
        which = torch.searchsorted(cutoffs, columns)
        sums = torch.zeros_like(weights).scatter_add_(1, which, columns)
        counts = torch.zeros_like(weights).scatter_add_(1, which, torch.ones_like(columns))
        weights = torch.where(counts > 0, sums / counts.clamp_min(1), weights)
        cutoffs = (weights[:, 1:] + weights[:, :-1]) / 2
    return cutoffs.float(), weights.float()


def token_scales(residuals: torch.Tensor) -> torch.Tensor:
    """(n, 1) root mean square of each residual, kept above zero."""
    return residuals.pow(2).mean(dim=-1, keepdim=True).sqrt().clamp_min(1e-8)


def pack_bits(values: torch.Tensor, nbits: int) -> torch.Tensor:
    """Pack (n, dim) integers below 2^nbits into (n, dim*nbits/8) uint8, first value high."""
    per_byte = 8 // nbits
    shifts = nbits * torch.arange(per_byte - 1, -1, -1, device=values.device, dtype=torch.int32)
    grouped = values.to(torch.int32).reshape(values.shape[0], values.shape[1] // per_byte, per_byte)
    return (grouped << shifts).sum(dim=-1).to(torch.uint8)


def unpack_table(nbits: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """(256, 8/nbits) int64: the values held by each possible packed byte, in order."""
    per_byte = 8 // nbits
    shifts = nbits * torch.arange(per_byte - 1, -1, -1, device=device)
    return (torch.arange(256, device=device)[:, None] >> shifts) & ((1 << nbits) - 1)


def unpack_bits(packed: torch.Tensor, nbits: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: (n, bytes) uint8 -> (n, bytes*8/nbits) int64."""
    table = unpack_table(nbits, packed.device)
    return table[packed.long()].reshape(packed.shape[0], packed.shape[1] * 8 // nbits)


@dataclass
class ResidualCodec:
    """Centroids (C, dim) float16 and the residual buckets of ``nbits`` bits: cutoffs
    (dim, 2^nbits - 1) and decoded values (dim, 2^nbits), one row per dimension. With
    ``token_scale`` buckets apply to residuals divided by their token's scale, stored in the
    last two bytes of each token's packed residual."""

    centroids: torch.Tensor
    nbits: int
    bucket_cutoffs: torch.Tensor
    bucket_weights: torch.Tensor
    token_scale: bool = True

    def __post_init__(self) -> None:
        if self.nbits not in NBITS:
            raise OdqaError(f"nbits must be one of {NBITS}, got {self.nbits}")
        if self.dim % 8:
            raise OdqaError(f"embedding dim must be a multiple of 8, got {self.dim}")
        device = self.centroids.device
        self.centroids = self.centroids.to(torch.float16)
        self._centroids32 = self.centroids.float()
        buckets = 1 << self.nbits
        self.bucket_cutoffs = self._per_dimension(self.bucket_cutoffs, buckets - 1)
        self.bucket_weights = self._per_dimension(self.bucket_weights, buckets)
        # (bytes per token * 256, values per byte): what byte b at position p decodes to
        per_byte = 8 // self.nbits
        columns = self.bucket_weights.view(self.bucket_bytes, per_byte, buckets)
        table = unpack_table(self.nbits, device)  # (256, per_byte)
        positions = torch.arange(per_byte, device=device)
        self._byte_weights = columns[:, positions, table].reshape(-1, per_byte)
        self._byte_base = 256 * torch.arange(self.bucket_bytes, device=device)

    def _per_dimension(self, values: torch.Tensor, width: int) -> torch.Tensor:
        """``values`` as float32 (dim, width): one row shared by all dimensions (indexes
        written before per-dimension buckets) is repeated."""
        values = values.to(device=self.centroids.device, dtype=torch.float32)
        if values.ndim == 1:
            values = values.expand(self.dim, -1)
        if tuple(values.shape) != (self.dim, width):
            raise IndexFormatError(
                f"codec buckets of shape {tuple(values.shape)}, expected ({self.dim}, {width})"
            )
        return values.contiguous()

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
    def bucket_bytes(self) -> int:
        """Bytes of bucket numbers per token."""
        return self.dim * self.nbits // 8

    @property
    def packed_dim(self) -> int:
        """Bytes of residual per token: bucket numbers, then the float16 scale if any."""
        return self.bucket_bytes + (SCALE_BYTES if self.token_scale else 0)

    @classmethod
    def train(
        cls,
        sample: torch.Tensor,
        *,
        nbits: int,
        num_centroids: int,
        kmeans_niters: int = 4,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> ResidualCodec:
        """Cluster ``sample`` (tokens, dim) and learn the buckets from a held-out part of it.

        The centroid count is capped at the number of clustered tokens.
        """
        if sample.ndim != 2 or sample.shape[0] < 2:
            raise OdqaError("the codec needs a sample of at least 2 token embeddings")
        generator = torch.Generator().manual_seed(seed)
        sample = sample[torch.randperm(sample.shape[0], generator=generator)]
        heldout_size = max(1, min(int(HELDOUT_FRACTION * sample.shape[0]), HELDOUT_MAX))
        heldout, points = sample[:heldout_size], sample[heldout_size:]
        k = min(num_centroids, points.shape[0])
        points = points[: MAX_POINTS_PER_CENTROID * k]
        centroids = kmeans(points, k, niters=kmeans_niters, seed=seed, device=device)
        centroids16 = centroids.half()
        heldout = heldout.to(device=device, dtype=torch.float32)
        residuals = heldout - centroids16.float()[assign(heldout, centroids16.float())]
        cutoffs, weights = lloyd_max((residuals / token_scales(residuals)).cpu(), 1 << nbits)
        return cls(centroids16, nbits, cutoffs, weights)

    def centroid_scores(self, vectors: torch.Tensor) -> torch.Tensor:
        """Inner products (..., C) of float32 ``vectors`` (..., dim) with every centroid."""
        return vectors @ self._centroids32.T

    def compress(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes int32 (n,) and packed residuals uint8 (n, dim*nbits/8), on the codec's device."""
        embeddings = embeddings.to(device=self.device, dtype=torch.float32)
        codes = assign(embeddings, self._centroids32)
        residuals = embeddings - self._centroids32[codes]
        if not self.token_scale:
            buckets = torch.searchsorted(self.bucket_cutoffs, residuals.T.contiguous()).T
            return codes.to(torch.int32), pack_bits(buckets, self.nbits)
        scaled = (residuals / token_scales(residuals)).T.contiguous()
        buckets = torch.searchsorted(self.bucket_cutoffs, scaled)  # (dim, n)
        decoded = self.bucket_weights.gather(1, buckets).T
        fitted = (decoded * residuals).sum(-1) / (decoded * decoded).sum(-1).clamp_min(1e-12)
        scale_bytes = fitted.to(torch.float16).view(torch.uint8).view(-1, SCALE_BYTES)
        packed = torch.cat([pack_bits(buckets.T, self.nbits), scale_bytes], dim=1)
        return codes.to(torch.int32), packed

    def decompress(self, codes: torch.Tensor, residuals: torch.Tensor) -> torch.Tensor:
        """Float32 (n, dim) unit vectors: centroid + decoded residual, re-normalised."""
        codes = codes.to(device=self.device, dtype=torch.long)
        residuals = residuals.to(device=self.device)
        buckets = residuals[:, : self.bucket_bytes].long() + self._byte_base
        vectors = self._byte_weights.index_select(0, buckets.flatten())
        vectors = vectors.view(codes.shape[0], self.dim)
        if self.token_scale:
            scale_bytes = residuals[:, self.bucket_bytes :].contiguous()
            vectors *= scale_bytes.view(torch.float16).float()
        vectors += self._centroids32.index_select(0, codes)
        return vectors.div_(vectors.norm(dim=-1, keepdim=True).clamp_min_(1e-12))

    def save(self, folder: Path) -> None:
        """``centroids.npy``, ``bucket_cutoffs.npy``, ``bucket_weights.npy``, ``codec.json``."""
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "centroids.npy", self.centroids.cpu().numpy())
        np.save(folder / "bucket_cutoffs.npy", self.bucket_cutoffs.cpu().numpy())
        np.save(folder / "bucket_weights.npy", self.bucket_weights.cpu().numpy())
        meta = {
            "nbits": self.nbits,
            "dim": self.dim,
            "num_centroids": self.num_centroids,
            "token_scale": self.token_scale,
        }
        (folder / CODEC_FILE).write_text(json.dumps(meta) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, device: str | torch.device = "cpu") -> ResidualCodec:
        try:
            meta = json.loads((folder / CODEC_FILE).read_text(encoding="utf-8"))
            arrays = {
                name: torch.from_numpy(np.load(folder / f"{name}.npy"))
                for name in ("centroids", "bucket_cutoffs", "bucket_weights")
            }
        except (OSError, ValueError) as exc:
            raise IndexFormatError(f"{folder}: missing or damaged codec: {exc}") from exc
        return cls(
            arrays["centroids"].to(device),
            int(meta["nbits"]),
            arrays["bucket_cutoffs"],
            arrays["bucket_weights"],
            bool(meta.get("token_scale", False)),
        )
