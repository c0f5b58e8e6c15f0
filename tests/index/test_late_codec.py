"""Residual codec and k-means: bit packing, compression error, centroid counts, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from odqa.errors import IndexFormatError, OdqaError
from odqa.index.late import (
    BucketCodec,
    ProductCodec,
    ResidualCodec,
    kmeans,
    num_centroids,
    training_pids,
)
from odqa.index.late.buckets import pack_bits, unpack_table
from odqa.index.late.codec import NBITS, fitted_scale_bytes, read_scales
from odqa.index.late.kmeans import assign
from odqa.index.late.product import nearest_codes, principal_axes, train_codebooks
from odqa.index.late.storage import load_codec
from odqa.index.late.synthetic import make_collection


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    embeddings, _, _ = make_collection(150, 32, seed=3)
    return embeddings


@pytest.mark.parametrize("nbits", NBITS)
def test_bit_packing_round_trips(nbits: int) -> None:
    values = torch.randint(1 << nbits, (57, 64), generator=torch.Generator().manual_seed(nbits))
    packed = pack_bits(values, nbits)
    assert packed.dtype == torch.uint8 and packed.shape == (57, 64 * nbits // 8)
    assert torch.equal(unpack_table(nbits)[packed.long()].reshape(57, 64), values)


def test_packing_puts_the_first_value_in_the_high_bits() -> None:
    assert pack_bits(torch.tensor([[1, 0, 0, 0, 0, 0, 0, 1]]), 1).tolist() == [[0b10000001]]
    assert pack_bits(torch.tensor([[3, 0, 1, 2]]), 2).tolist() == [[0b11000110]]


def test_decompression_error_shrinks_as_nbits_grows(tokens: torch.Tensor) -> None:
    train, held = tokens[:-500], tokens[-500:]
    errors = []
    for nbits in NBITS:
        codec = ProductCodec.train(train, nbits=nbits, num_centroids=64, seed=0)
        codes, residuals = codec.compress(held)
        assert codes.dtype == torch.int32 and residuals.shape == (500, 32 * nbits // 8 + 1)
        assert int(residuals[:, -1].max()) < 16  # the scale: one of 16 levels
        restored = codec.from_index_space(codec.decompress(codes, residuals))
        assert torch.allclose(restored.norm(dim=1), torch.ones(500), atol=1e-5)
        errors.append(float((held - restored).norm(dim=1).mean()))
    assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] / 4


def test_number_of_centroids_follows_plaid() -> None:
    assert num_centroids(12_000) == 1024  # 16 * sqrt(12000) = 1752.7
    assert num_centroids(1_250_000) == 16_384  # 17889
    assert num_centroids(1_000_000) == 8192  # 16000
    assert all(num_centroids(n) & (num_centroids(n) - 1) == 0 for n in (1, 50, 10**7))


def test_centroids_are_capped_at_the_clustered_sample(tokens: torch.Tensor) -> None:
    sample = tokens[:200]
    codec = ProductCodec.train(sample, nbits=2, num_centroids=num_centroids(10**6))
    assert codec.num_centroids == 190  # 200 minus the 5% held out for the residual coding
    assert codec.centroids.dtype == torch.float16
    assert codec.codebooks.shape == (8, 10, 4)  # 10 held-out tokens: at most 10 codes


def test_turning_keeps_inner_products(tokens: torch.Tensor) -> None:
    codec = ProductCodec.train(tokens, nbits=2, num_centroids=64)
    rotation = codec.rotation
    assert torch.allclose(rotation.T @ rotation, torch.eye(32), atol=1e-5)
    queries = tokens[:20]
    turned = codec.to_index_space(queries)
    assert torch.allclose(codec.from_index_space(turned), queries, atol=1e-6)
    original_centroids = codec.from_index_space(codec.centroids.float())
    assert torch.allclose(codec.centroid_scores(turned), queries @ original_centroids.T, atol=1e-5)


def test_principal_axes_are_dealt_round_robin() -> None:
    generator = torch.Generator().manual_seed(0)
    spread = torch.tensor([1.0, 8.0, 2.0, 6.0, 3.0, 7.0, 4.0, 5.0])
    values = torch.randn(20_000, 8, generator=generator) * spread
    axes = principal_axes(values, subspaces=2)  # subspace 0: columns 0-3, subspace 1: 4-7
    strength = (values @ axes).std(dim=0)
    assert torch.allclose(axes.T @ axes, torch.eye(8), atol=1e-5)
    expected = torch.tensor([8.0, 6.0, 4.0, 2.0, 7.0, 5.0, 3.0, 1.0])
    assert torch.allclose(strength, expected, rtol=0.03)


def test_nearest_codes_match_brute_force_and_training_lowers_the_error() -> None:
    generator = torch.Generator().manual_seed(1)
    points = torch.randn(3_000, 8, generator=generator)
    books = train_codebooks(points, 4, iterations=0)
    found = nearest_codes(points, books)
    for subspace in range(2):
        distances = torch.cdist(points[:, 4 * subspace : 4 * subspace + 4], books[subspace])
        assert torch.equal(found[:, subspace], distances.argmin(dim=1))

    def error(codebooks: torch.Tensor) -> float:
        codes = nearest_codes(points, codebooks)
        decoded = torch.cat([codebooks[j][codes[:, j]] for j in range(2)], dim=1)
        return float((decoded - points).pow(2).sum(1).mean())

    assert error(train_codebooks(points, 4)) < 0.8 * error(books)


def test_product_codec_beats_per_dimension_buckets_in_fewer_bytes(tokens: torch.Tensor) -> None:
    train, held = tokens[:-500], tokens[-500:]
    product = ProductCodec.train(train, nbits=2, num_centroids=64, seed=0)
    centroids = product.from_index_space(product.centroids.float())
    residuals = train - centroids[assign(train, centroids)]
    scaled = (residuals / residuals.pow(2).mean(1, keepdim=True).sqrt()).T
    levels = torch.arange(4, dtype=torch.float32)
    buckets = BucketCodec(
        centroids,
        2,
        torch.quantile(scaled, levels[1:] / 4, dim=1).T,
        torch.quantile(scaled, (levels + 0.5) / 4, dim=1).T,
    )
    assert product.packed_dim < buckets.packed_dim  # a scale level, not a float16

    def error(codec: ResidualCodec) -> float:
        restored = codec.from_index_space(codec.decompress(*codec.compress(held)))
        return float((held - restored).pow(2).sum(1).mean())

    assert error(product) < 0.95 * error(buckets)


def test_token_scale_follows_each_token(tokens: torch.Tensor) -> None:
    codec = ProductCodec.train(tokens[:-500], nbits=2, num_centroids=64, seed=0)
    held = tokens[-500:]
    codes, residuals = codec.compress(held)
    scales = codec.scale_levels[residuals[:, -1].long()]
    turned = codec.to_index_space(held)
    rms = (turned - codec.centroids.float()[codes.long()]).pow(2).mean(1).sqrt()
    assert torch.corrcoef(torch.stack([scales, rms]))[0, 1] > 0.8


def test_scale_points_each_token_at_least_as_close_as_least_squares() -> None:
    generator = torch.Generator().manual_seed(5)
    tokens = torch.nn.functional.normalize(torch.randn(400, 32, generator=generator), dim=1)
    centroids = torch.nn.functional.normalize(
        tokens + 0.6 * torch.randn(400, 32, generator=generator), dim=1
    )
    residuals = tokens - centroids
    decoded = residuals / residuals.norm(dim=1, keepdim=True) + 0.4 * torch.randn(
        400, 32, generator=generator
    )
    scales = read_scales(fitted_scale_bytes(decoded, residuals, tokens))
    least_squares = (decoded * residuals).sum(1, keepdim=True) / decoded.pow(2).sum(1, keepdim=True)

    def cosines(scale: torch.Tensor) -> torch.Tensor:
        vectors = centroids + scale * decoded
        return (vectors * tokens).sum(1) / vectors.norm(dim=1)

    ours, fitted = cosines(scales), cosines(least_squares.half().float())
    assert bool((ours >= fitted - 1e-6).all())
    assert float((ours - fitted).mean()) > 1e-3


def write_bucket_codec(folder: Path, cutoffs: np.ndarray, weights: np.ndarray, **meta) -> None:
    """A codec folder as the releases before the product codec wrote it."""
    folder.mkdir()
    centroids = torch.nn.functional.normalize(torch.randn(16, 32), dim=1).half()
    np.save(folder / "centroids.npy", centroids.numpy())
    np.save(folder / "bucket_cutoffs.npy", cutoffs)
    np.save(folder / "bucket_weights.npy", weights)
    (folder / "codec.json").write_text(json.dumps({"nbits": 2, "dim": 32, **meta}))


def test_codecs_with_one_set_of_buckets_still_load(tokens: torch.Tensor, tmp_path: Path) -> None:
    """The first indexes stored one row of buckets for all dimensions and no token scale."""
    shared_cutoffs, shared_weights = (
        np.array([-0.02, 0.0, 0.02]),
        np.array([-0.04, -0.01, 0.01, 0.04]),
    )
    write_bucket_codec(tmp_path / "codec", shared_cutoffs, shared_weights, num_centroids=16)
    old = load_codec(tmp_path / "codec")
    assert isinstance(old, BucketCodec) and not old.token_scale
    codes, residuals = old.compress(tokens[:50])
    centroids = old.centroids.float()[codes.long()]
    buckets = torch.bucketize(tokens[:50] - centroids, torch.tensor(shared_cutoffs).float())
    expected = centroids + torch.tensor(shared_weights).float()[buckets]
    expected /= expected.norm(dim=1, keepdim=True)
    assert old.packed_dim == 32 * 2 // 8
    assert torch.equal(unpack_table(2)[residuals.long()].reshape(50, 32), buckets)
    assert torch.allclose(old.decompress(codes, residuals), expected, atol=1e-6)


def test_codecs_with_per_dimension_buckets_and_scales_still_load(
    tokens: torch.Tensor, tmp_path: Path
) -> None:
    cutoffs = np.tile([[-0.7, 0.0, 0.7]], (32, 1))
    weights = np.tile([[-1.3, -0.4, 0.4, 1.3]], (32, 1))
    write_bucket_codec(tmp_path / "codec", cutoffs, weights, num_centroids=16, token_scale=True)
    old = load_codec(tmp_path / "codec")
    assert isinstance(old, BucketCodec) and old.token_scale and old.packed_dim == 8 + 2
    held = tokens[:200]
    centroids = old.centroids.float()[old.compress(held)[0].long()]
    restored = old.decompress(*old.compress(held))
    assert float((restored - held).norm(dim=1).mean()) < float(
        (centroids - held).norm(dim=1).mean()
    )


def test_codec_save_load_round_trip(tokens: torch.Tensor, tmp_path: Path) -> None:
    codec = ProductCodec.train(tokens, nbits=4, num_centroids=32, seed=1)
    codec.save(tmp_path / "codec")
    again = load_codec(tmp_path / "codec")
    assert isinstance(again, ProductCodec)
    codes, residuals = codec.compress(tokens[:100])
    assert torch.equal(again.decompress(codes, residuals), codec.decompress(codes, residuals))


def test_damaged_or_unknown_codecs_are_refused(tokens: torch.Tensor, tmp_path: Path) -> None:
    codec = ProductCodec.train(tokens, nbits=2, num_centroids=32)
    codec.save(tmp_path / "codec")
    (tmp_path / "codec" / "codec.json").write_text(json.dumps({"kind": "lattice", "nbits": 2}))
    with pytest.raises(IndexFormatError, match="unknown codec kind 'lattice'"):
        load_codec(tmp_path / "codec")
    codec.save(tmp_path / "codec")
    (tmp_path / "codec" / "rotation.npy").unlink()
    with pytest.raises(IndexFormatError, match="missing or damaged codec"):
        load_codec(tmp_path / "codec")


def test_codec_rejects_bad_settings(tokens: torch.Tensor) -> None:
    with pytest.raises(OdqaError, match="nbits"):
        ProductCodec.train(tokens, nbits=3, num_centroids=8)
    with pytest.raises(OdqaError, match="multiple of 8"):
        ProductCodec.train(tokens[:, :12], nbits=2, num_centroids=8)


@pytest.mark.parametrize("init", ["random", "kmeans++"])
def test_kmeans_is_deterministic_and_spherical(tokens: torch.Tensor, init: str) -> None:
    first = kmeans(tokens, 40, seed=5, init=init)
    assert torch.equal(first, kmeans(tokens, 40, seed=5, init=init))
    assert not torch.equal(first, kmeans(tokens, 40, seed=6, init=init))
    assert torch.allclose(first.norm(dim=1), torch.ones(40), atol=1e-5)


def test_kmeans_improves_on_its_initialisation(tokens: torch.Tensor) -> None:
    def fit(centroids: torch.Tensor) -> float:
        return float((tokens @ centroids.T).max(dim=1).values.mean())

    assert fit(kmeans(tokens, 40, niters=6)) > fit(kmeans(tokens, 40, niters=0))


def test_training_pids_follow_colbert_sampling() -> None:
    assert len(training_pids(1_000)) == 1_000  # 16 sqrt(120 000) > 1000: everything
    pids = training_pids(33_000, seed=2)
    assert len(pids) == 1 + int(16 * np.sqrt(120 * 33_000))  # under the cap of 32,768
    assert np.all(np.diff(pids) > 0)


@pytest.mark.parametrize(("centroids", "dtype"), [(1 << 16, np.uint16), ((1 << 16) + 1, np.int32)])
def test_codes_are_stored_in_two_bytes_up_to_65536_centroids(centroids: int, dtype: type) -> None:
    codec = BucketCodec(torch.zeros(centroids, 8), 2, torch.zeros(3), torch.zeros(4))
    assert codec.code_dtype is dtype
    assert np.iinfo(codec.code_dtype).max >= centroids - 1


@pytest.mark.parametrize("kind", ["product", "buckets"])
def test_compression_takes_a_block_of_tokens_at_a_time(
    tokens: torch.Tensor, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many tokens are compressed in blocks (memory stays that of one block: a demo's 150k
    tokens at once held 1.4 GB), and the blocks give what one pass gives."""
    import odqa.index.late.codec as codec_module

    product = ProductCodec.train(tokens[:-500], nbits=2, num_centroids=64, seed=0)
    codec = product if kind == "product" else BucketCodec(
        product.from_index_space(product.centroids.float()), 2,
        torch.tensor([-0.5, 0.0, 0.5]), torch.tensor([-1.0, -0.25, 0.25, 1.0]),
    )  # fmt: skip
    held = tokens[-500:]
    whole = codec.compress(held)
    seen: list[int] = []
    real = type(codec).compress_block
    monkeypatch.setattr(codec_module, "COMPRESS_BLOCK", 64 * codec.dim)
    monkeypatch.setattr(
        type(codec),
        "compress_block",
        lambda self, block: seen.append(len(block)) or real(self, block),
    )
    blocked = codec.compress(held)
    assert max(seen) == 64 and sum(seen) == 500
    assert torch.equal(blocked[0], whole[0]) and torch.equal(blocked[1], whole[1])
