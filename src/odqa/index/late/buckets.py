"""ColBERTv2-style residual buckets: the codec of indexes written before the product codec.

Each dimension of a residual (token - centroid) is stored as the number of the bucket it
falls in, ``nbits`` bits each, packed first value high; each bucket decodes to one value.
Indexes from the first releases hold one set of buckets for all dimensions and no scale;
later ones one set per dimension, applied to the residual divided by its root mean square,
with a float16 scale in the last two bytes. Both load, decode and take
added passages; re-clustering moves them to the product codec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from odqa.errors import IndexFormatError
from odqa.index.late.codec import (
    SCALE_BYTES,
    ResidualCodec,
    fitted_scale_bytes,
    read_scales,
    token_scales,
)


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


@dataclass
class BucketCodec(ResidualCodec):
    """Bucket cutoffs (dim, 2^nbits - 1) and decoded values (dim, 2^nbits), one row per
    dimension (a single row is shared by all). With ``token_scale`` buckets apply to
    residuals divided by their token's scale, kept in the last two bytes."""

    KIND: ClassVar[str] = "buckets"
    ARRAYS: ClassVar[tuple[str, ...]] = ("bucket_cutoffs", "bucket_weights")

    bucket_cutoffs: torch.Tensor
    bucket_weights: torch.Tensor
    token_scale: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        device = self.device
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
        """``values`` as float32 (dim, width); a single shared row is repeated."""
        values = values.to(device=self.device, dtype=torch.float32)
        if values.ndim == 1:
            values = values.expand(self.dim, -1)
        if tuple(values.shape) != (self.dim, width):
            raise IndexFormatError(
                f"codec buckets of shape {tuple(values.shape)}, expected ({self.dim}, {width})"
            )
        return values.contiguous()

    @property
    def bucket_bytes(self) -> int:
        """Bytes of bucket numbers per token."""
        return self.dim * self.nbits // 8

    @property
    def packed_dim(self) -> int:
        """Bucket numbers, then the float16 scale if any."""
        return self.bucket_bytes + (SCALE_BYTES if self.token_scale else 0)

    def compress_block(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        vectors = embeddings.to(device=self.device, dtype=torch.float32)
        codes, residuals = self.nearest_centroids(vectors)
        if not self.token_scale:
            buckets = torch.searchsorted(self.bucket_cutoffs, residuals.T.contiguous()).T
            return codes.to(torch.int32), pack_bits(buckets, self.nbits)
        scaled = (residuals / token_scales(residuals)).T.contiguous()
        buckets = torch.searchsorted(self.bucket_cutoffs, scaled)  # (dim, n)
        decoded = self.bucket_weights.gather(1, buckets).T
        scale = fitted_scale_bytes(decoded, residuals, vectors)
        packed = torch.cat([pack_bits(buckets.T, self.nbits), scale], dim=1)
        return codes.to(torch.int32), packed

    def decompress(self, codes: torch.Tensor, residuals: torch.Tensor) -> torch.Tensor:
        residuals = residuals.to(device=self.device)
        buckets = residuals[:, : self.bucket_bytes].long() + self._byte_base
        decoded = self._byte_weights.index_select(0, buckets.flatten()).view(-1, self.dim)
        if self.token_scale:
            decoded *= read_scales(residuals[:, self.bucket_bytes :])
        return self.with_centroids(codes, decoded)

    def options(self) -> dict[str, Any]:
        return {"token_scale": self.token_scale}

    @classmethod
    def read_options(cls, meta: dict[str, Any]) -> dict[str, Any]:
        return {"token_scale": bool(meta.get("token_scale", False))}
