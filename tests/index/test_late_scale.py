"""What keeps big late-interaction indexes cheap: the centroid cap, two-level assignment,
the capped k-means sample, faiss's product quantiser for residual codes, and token arrays
written where they stay."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch

from odqa.index.late import (
    LateIndex,
    ProductCodec,
    build_late_index,
    num_centroids,
)
from odqa.index.late.codec import MAX_CENTROIDS, cluster_sample, training_pids, training_size
from odqa.index.late.kmeans import FLAT_MAX, assign, centroid_groups
from odqa.index.late.product import nearest_codes
from odqa.index.late.synthetic import make_collection

# the package exports a function named kmeans, which hides the module of that name
kmeans_module = importlib.import_module("odqa.index.late.kmeans")
codec_module = importlib.import_module("odqa.index.late.codec")


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    embeddings, _, _ = make_collection(400, 32, vocab=600, topics=20, seed=4)
    return embeddings


def test_centroid_count_is_plaids_up_to_the_cap() -> None:
    assert num_centroids(10**7) == 32_768  # PLAID: 16 sqrt(10^7) = 50,596
    assert num_centroids(16_777_216) == MAX_CENTROIDS == 65_536
    assert num_centroids(10**8) == MAX_CENTROIDS  # PLAID would take 131,072
    assert num_centroids(10**9) == MAX_CENTROIDS


def test_the_training_sample_grows_with_the_collection_within_bounds() -> None:
    """2,048 documents trained 65,536 centroids at a million passages (3 tokens each)."""
    assert training_size(5_000) == 5_000  # ColBERTv2: 16 sqrt(120 * 5,000) = 12,395
    assert training_size(31_000) == 30_860  # 16 sqrt(120 * 31,000)
    assert training_size(1_000_000) == 32_768  # ColBERTv2 would take 175,272
    pids = training_pids(50_000, seed=3)
    assert len(pids) == 32_768 and np.all(np.diff(pids) > 0) and pids[-1] < 50_000


def test_small_codebooks_are_scored_flat(tokens: torch.Tensor) -> None:
    assert centroid_groups(tokens[:FLAT_MAX]) is None


@pytest.fixture
def small_flat_max(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two-level assignment from 64 centroids on, so tests can afford it."""
    monkeypatch.setattr(kmeans_module, "FLAT_MAX", 64)
    monkeypatch.setattr(codec_module, "FLAT_MAX", 64)


def best_scores(points: torch.Tensor, centroids: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    return (points * centroids[ids]).sum(dim=1)


@pytest.mark.usefixtures("small_flat_max")
def test_two_level_assignment_finds_the_nearest_centroid(tokens: torch.Tensor) -> None:
    centroids = tokens[torch.randperm(len(tokens), generator=torch.Generator().manual_seed(0))]
    centroids = centroids[:400]
    groups = centroid_groups(centroids)
    assert groups is not None and len(groups.members) == 20  # isqrt(400)
    assert sorted(torch.cat(groups.members).tolist()) == list(range(400))
    points = tokens[-3000:]
    flat = assign(points, centroids)
    grouped = assign(points, centroids, groups)
    gap = best_scores(points, centroids, flat) - best_scores(points, centroids, grouped)
    assert (grouped == flat).float().mean() > 0.8
    assert float(gap.mean()) < 0.01  # a miss is a close centroid


@pytest.mark.usefixtures("small_flat_max")
def test_two_level_assignment_is_exact_when_every_group_is_probed(
    tokens: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kmeans_module, "PROBES", 1000)
    centroids = tokens[:300]
    points = tokens[-2000:]
    grouped = assign(points, centroids, centroid_groups(centroids))
    flat = assign(points, centroids)
    gap = best_scores(points, centroids, flat) - best_scores(points, centroids, grouped)
    assert float(gap.abs().max()) < 1e-2  # bfloat16 near-ties aside, the same centroid


@pytest.mark.usefixtures("small_flat_max")
def test_codec_past_flat_max_compresses_as_well(tokens: torch.Tensor) -> None:
    train, held = tokens[:-2000], tokens[-2000:]
    codec = ProductCodec.train(train, nbits=2, num_centroids=256, seed=0)
    codes, residuals = codec.compress(held)
    assert codec._groups is not None  # two levels were used
    restored = codec.from_index_space(codec.decompress(codes, residuals))
    flat_codes = assign(codec.to_index_space(held), codec._centroids32)
    assert (codes.long() == flat_codes).float().mean() > 0.9
    assert float((held * restored).sum(dim=1).mean()) > 0.9


def test_kmeans_sample_is_capped(tokens: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def recording(points: torch.Tensor, k: int, **options) -> torch.Tensor:
        seen.append(points.shape[0])
        return points[:k].clone()

    monkeypatch.setattr(codec_module, "MAX_TRAINING_POINTS", 1000)
    monkeypatch.setattr(codec_module, "kmeans", recording)
    cluster_sample(tokens, num_centroids=2, kmeans_niters=1, seed=0, device="cpu")
    assert seen == [2 * 256]  # 256 points per centroid
    cluster_sample(tokens, num_centroids=16, kmeans_niters=1, seed=0, device="cpu")
    assert seen[-1] == 1000  # the overall cap


def test_full_codebooks_match_brute_force() -> None:
    generator = torch.Generator().manual_seed(2)
    points = torch.randn(4_000, 16, generator=generator)
    books = torch.randn(8, 256, 2, generator=generator)  # the faiss path: 256 codes
    found = nearest_codes(points, books)
    for subspace in range(8):
        distances = torch.cdist(points[:, 2 * subspace : 2 * subspace + 2], books[subspace])
        chosen = distances.gather(1, found[:, subspace : subspace + 1]).flatten()
        assert torch.allclose(chosen, distances.min(dim=1).values, atol=1e-5)


def test_finishing_a_build_does_not_copy_the_token_arrays(tmp_path: Path) -> None:
    """The token arrays are written where they stay: finishing only writes their headers
    (a copy doubled the disk a 1M-passage build needs at its end)."""
    embeddings, doclens, _ = make_collection(200, 32, min_len=10, max_len=30, seed=3)
    folder = tmp_path / "index"
    with build_late_index(folder, nbits=2) as writer:
        writer.train(embeddings)
        writer.add(embeddings[: int(doclens[:100].sum())], doclens[:100])
        staging = writer.folder
        written = {name: (staging / f"{name}.npy").stat().st_ino for name in ("codes", "residuals")}
        writer.add(embeddings[int(doclens[:100].sum()) :], doclens[100:])
    for name, inode in written.items():
        assert (folder / f"{name}.npy").stat().st_ino == inode
    assert np.load(folder / "codes.npy", mmap_mode="r").shape == (int(doclens.sum()),)
    assert LateIndex(folder).num_passages == 200
