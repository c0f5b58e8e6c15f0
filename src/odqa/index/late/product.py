"""Residual product quantisation in a rotated space: the codec of new indexes.

A token is stored as its nearest centroid, one byte per subspace of ``8 / nbits`` dimensions
(``dim * nbits / 8`` bytes, the budget of ColBERTv2's ``nbits`` per dimension) and a scale:
one of 16 levels learned from the held-out tokens (a float16 in codecs written before them).
The space is first turned by an orthogonal matrix whose axes are the principal axes of
held-out residuals, dealt round-robin to the subspaces so that each holds a share of the
strong and the weak ones; each residual is divided by its root mean square, and each
subspace has up to 256 code vectors learned by k-means on the held-out residuals. The scale
kept is the level nearest the one that points the re-normalised token closest to the true
one.

Centroids are stored turned, and the index lives in the turned space: queries are turned
once by :meth:`ProductCodec.to_index_space`, which leaves every inner product as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import faiss
import numpy as np
import torch

from odqa.errors import IndexFormatError
from odqa.index.late.codec import (
    SCALE_BYTES,
    ResidualCodec,
    check_settings,
    cluster_sample,
    fit_scale_levels,
    fitted_scale_bytes,
    read_scales,
    scale_level_bytes,
    token_scales,
)

CODES_PER_SUBSPACE = 256  # one byte
CODEBOOK_ITERATIONS = 20
SCORE_BUDGET = 1 << 21  # floats in one (subspaces x rows x codes) distance block: 8 MiB


def principal_axes(residuals: torch.Tensor, subspaces: int) -> torch.Tensor:
    """Orthogonal (dim, dim) float32 whose columns are the principal axes of ``residuals``,
    strongest first, dealt round-robin so subspace j (columns j*w .. j*w+w-1, w = dim /
    subspaces) gets axes j, j + subspaces, j + 2 subspaces, ..."""
    values = residuals.double()
    covariance = values.T @ values / max(1, values.shape[0])
    strength, axes = torch.linalg.eigh(covariance)
    axes = axes[:, strength.argsort(descending=True)]
    dim = axes.shape[0]
    dealt = torch.arange(dim).view(dim // subspaces, subspaces).T.reshape(-1)
    return axes[:, dealt].float().contiguous()


def nearest_codes(points: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    """(n, subspaces) int64: for each row of ``points`` (n, dim) and each subspace, the
    nearest (Euclidean) of ``codebooks`` (subspaces, codes, width).

    On the CPU with full 256-code books this is faiss's product quantiser (about 15 times
    faster on 2 cores, the same codes up to exact ties); otherwise blocks of distances.
    """
    subspaces, codes, width = codebooks.shape
    if points.device.type == "cpu" and codes == CODES_PER_SUBSPACE and len(points):
        quantiser = faiss.ProductQuantizer(subspaces * width, subspaces, 8)
        faiss.copy_array_to_vector(codebooks.float().numpy().ravel(), quantiser.centroids)
        found = quantiser.compute_codes(np.ascontiguousarray(points.float().numpy()))
        return torch.from_numpy(found.astype(np.int64))
    grouped = points.reshape(points.shape[0], subspaces, width).transpose(0, 1)
    squared = codebooks.pow(2).sum(-1)[:, None, :]  # (subspaces, 1, codes)
    rows = max(1, SCORE_BUDGET // (subspaces * codes))
    found = [
        torch.baddbmm(squared, block, codebooks.transpose(1, 2), alpha=-2).min(dim=2).indices
        for block in grouped.split(rows, dim=1)
    ]
    return torch.cat(found, dim=1).T if found else torch.zeros(0, subspaces, dtype=torch.long)


def train_codebooks(
    points: torch.Tensor, width: int, *, iterations: int = CODEBOOK_ITERATIONS, seed: int = 0
) -> torch.Tensor:
    """(dim / width, codes, width) float32 code vectors: k-means in each subspace of
    ``width`` dimensions of ``points`` (n, dim), codes = min(256, n). An empty code keeps
    its place."""
    count, dim = points.shape
    subspaces, codes = dim // width, min(CODES_PER_SUBSPACE, count)
    generator = torch.Generator().manual_seed(seed)
    grouped = points.reshape(count, subspaces, width).transpose(0, 1)  # (subspaces, n, width)
    chosen = torch.stack([torch.randperm(count, generator=generator)[:codes] for _ in grouped])
    codebooks = torch.gather(grouped, 1, chosen[..., None].expand(-1, -1, width)).clone()
    grouped = grouped.double()
    for _ in range(iterations):
        labels = nearest_codes(points, codebooks).T  # (subspaces, n)
        sums = torch.zeros(subspaces, codes, width, dtype=torch.float64)
        sums.scatter_add_(1, labels[..., None].expand(-1, -1, width), grouped)
        counts = torch.zeros(subspaces, codes, dtype=torch.float64)
        counts.scatter_add_(1, labels, torch.ones_like(labels, dtype=torch.float64))
        means = (sums / counts.clamp_min(1)[..., None]).float()
        codebooks = torch.where(counts[..., None] > 0, means, codebooks)
    return codebooks


@dataclass
class ProductCodec(ResidualCodec):
    """Centroids (C, dim) float16 in the turned space, the rotation (dim, dim) float32, the
    code vectors (dim * nbits / 8, codes, 8 / nbits) float32 and the scale levels (16,)
    float32 (None: a float16 scale per token, as codecs written before them)."""

    KIND: ClassVar[str] = "product"
    ARRAYS: ClassVar[tuple[str, ...]] = ("rotation", "codebooks")

    rotation: torch.Tensor
    codebooks: torch.Tensor
    scale_levels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        device = self.device
        self.rotation = self.rotation.to(device=device, dtype=torch.float32)
        self.codebooks = self.codebooks.to(device=device, dtype=torch.float32)
        if self.scale_levels is not None:
            self.scale_levels = self.scale_levels.to(device=device, dtype=torch.float32)
        subspaces, codes, width = self.codebooks.shape
        if self.rotation.shape != (self.dim, self.dim) or (subspaces, width) != (
            self.subspaces,
            8 // self.nbits,
        ):
            raise IndexFormatError(
                f"codec rotation {tuple(self.rotation.shape)} or codebooks "
                f"{tuple(self.codebooks.shape)} do not fit dim {self.dim} and nbits {self.nbits}"
            )
        self._flat_codebooks = self.codebooks.reshape(subspaces * codes, width)
        self._code_base = codes * torch.arange(subspaces, device=device, dtype=torch.int32)

    @property
    def subspaces(self) -> int:
        return self.dim * self.nbits // 8

    @property
    def packed_dim(self) -> int:
        """One byte per subspace, then the scale: its level's byte, or a float16's two."""
        return self.subspaces + (1 if self.scale_nibble else SCALE_BYTES)

    @property
    def scale_nibble(self) -> bool:
        return self.scale_levels is not None

    def options(self) -> dict[str, Any]:
        if self.scale_levels is None:
            return {}
        return {"scale_levels": [float(level) for level in self.scale_levels.cpu()]}

    @classmethod
    def read_options(cls, meta: dict[str, Any]) -> dict[str, Any]:
        levels = meta.get("scale_levels")
        return {} if levels is None else {"scale_levels": torch.tensor(levels)}

    def to_index_space(self, vectors: torch.Tensor) -> torch.Tensor:
        return vectors @ self.rotation

    def from_index_space(self, vectors: torch.Tensor) -> torch.Tensor:
        return vectors @ self.rotation.T

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
    ) -> ProductCodec:
        """Cluster ``sample`` (tokens, dim); learn the rotation, the code vectors and the
        scale levels from the residuals of a held-out part of it."""
        check_settings(nbits, sample.shape[-1])
        centroids, residuals, heldout = cluster_sample(
            sample,
            num_centroids=num_centroids,
            kmeans_niters=kmeans_niters,
            seed=seed,
            device=device,
        )
        residuals = residuals.cpu()
        rotation = principal_axes(residuals, residuals.shape[1] * nbits // 8)
        turned = residuals @ rotation
        codebooks = train_codebooks(turned / token_scales(turned), 8 // nbits, seed=seed)
        turned_centroids = (centroids.float() @ rotation.to(centroids.device)).half()
        codec = cls(turned_centroids, nbits, rotation, codebooks)
        decoded = codec._decode(nearest_codes(turned / token_scales(turned), codebooks))
        fitted = fitted_scale_bytes(decoded, turned, heldout.cpu() @ rotation)
        codec.scale_levels = fit_scale_levels(read_scales(fitted)[:, 0]).to(codec.device)
        return codec

    def compress_block(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        turned = self.to_index_space(embeddings.to(device=self.device, dtype=torch.float32))
        codes, residuals = self.nearest_centroids(turned)
        found = nearest_codes(residuals / token_scales(residuals), self.codebooks)
        scale = fitted_scale_bytes(self._decode(found), residuals, turned)
        if self.scale_levels is not None:
            scale = scale_level_bytes(scale, self.scale_levels)
        packed = torch.cat([found.to(torch.uint8), scale], dim=1)
        return codes.to(torch.int32), packed

    def _decode(self, found: torch.Tensor) -> torch.Tensor:
        """(n, dim) code vectors of (n, subspaces) code numbers."""
        rows = found.to(torch.int32, copy=True).add_(self._code_base).flatten()
        return self._flat_codebooks.index_select(0, rows).view(-1, self.dim)

    def decompress(self, codes: torch.Tensor, residuals: torch.Tensor) -> torch.Tensor:
        residuals = residuals.to(device=self.device)
        decoded = self._decode(residuals[:, : self.subspaces])
        if self.scale_levels is None:
            decoded *= read_scales(residuals[:, self.subspaces :])
        else:
            decoded *= self.scale_levels[residuals[:, self.subspaces].long()][:, None]
        return self.with_centroids(codes, decoded)
