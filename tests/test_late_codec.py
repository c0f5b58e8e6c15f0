"""Residual codec and k-means: bit packing, compression error, centroid counts, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from odqa.errors import OdqaError
from odqa.index.late import ResidualCodec, kmeans, num_centroids, training_pids
from odqa.index.late.codec import NBITS, lloyd_max, pack_bits, unpack_bits
from odqa.index.late.kmeans import assign
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
    assert torch.equal(unpack_bits(packed, nbits), values)


def test_packing_puts_the_first_value_in_the_high_bits() -> None:
    assert pack_bits(torch.tensor([[1, 0, 0, 0, 0, 0, 0, 1]]), 1).tolist() == [[0b10000001]]
    assert pack_bits(torch.tensor([[3, 0, 1, 2]]), 2).tolist() == [[0b11000110]]


def test_decompression_error_shrinks_as_nbits_grows(tokens: torch.Tensor) -> None:
    train, held = tokens[:-500], tokens[-500:]
    errors = []
    for nbits in NBITS:
        codec = ResidualCodec.train(train, nbits=nbits, num_centroids=64, seed=0)
        codes, residuals = codec.compress(held)
        assert codes.dtype == torch.int32 and residuals.shape == (500, 32 * nbits // 8 + 2)
        restored = codec.decompress(codes, residuals)
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
    codec = ResidualCodec.train(sample, nbits=2, num_centroids=num_centroids(10**6))
    assert codec.num_centroids == 190  # 200 minus the 5% held out for the buckets
    assert codec.centroids.dtype == torch.float16


def test_buckets_are_per_dimension_and_ordered(tokens: torch.Tensor) -> None:
    codec = ResidualCodec.train(tokens, nbits=2, num_centroids=64)
    assert codec.bucket_cutoffs.shape == (32, 3) and codec.bucket_weights.shape == (32, 4)
    weights, cutoffs = codec.bucket_weights, codec.bucket_cutoffs
    assert torch.all(weights[:, :-1] < cutoffs) and torch.all(cutoffs < weights[:, 1:])


def test_lloyd_max_beats_quantile_buckets_and_follows_each_dimension() -> None:
    generator = torch.Generator().manual_seed(0)
    scales = torch.tensor([0.01, 0.1, 1.0])
    values = torch.randn(20_000, 3, generator=generator) * scales

    def error(iterations: int) -> float:
        cutoffs, weights = lloyd_max(values, 4, iterations)
        which = torch.searchsorted(cutoffs, values.T.contiguous())
        return float((weights.gather(1, which) - values.T).pow(2).mean())

    assert error(20) < 0.97 * error(0)  # Gaussian: Lloyd-Max 0.1175 vs quantiles ~0.125
    cutoffs, _ = lloyd_max(values, 4)
    ratio = cutoffs[:, 2] / scales
    assert torch.allclose(ratio, ratio[0].expand(3), rtol=0.05)  # cutoffs scale with the data


def test_codecs_with_one_set_of_buckets_still_load(tokens: torch.Tensor, tmp_path: Path) -> None:
    """Indexes written before per-dimension buckets stored one row for all dimensions and
    no token scale."""
    codec = ResidualCodec.train(tokens, nbits=2, num_centroids=32)
    codec.save(tmp_path / "codec")
    meta_file = tmp_path / "codec" / "codec.json"
    meta = json.loads(meta_file.read_text())
    del meta["token_scale"]
    meta_file.write_text(json.dumps(meta))
    shared_cutoffs, shared_weights = (
        np.array([-0.02, 0.0, 0.02]),
        np.array([-0.04, -0.01, 0.01, 0.04]),
    )
    np.save(tmp_path / "codec" / "bucket_cutoffs.npy", shared_cutoffs)
    np.save(tmp_path / "codec" / "bucket_weights.npy", shared_weights)
    old = ResidualCodec.load(tmp_path / "codec")
    codes, residuals = old.compress(tokens[:50])
    centroids = old.centroids.float()[codes.long()]
    buckets = torch.bucketize(tokens[:50] - centroids, torch.tensor(shared_cutoffs).float())
    expected = centroids + torch.tensor(shared_weights).float()[buckets]
    expected /= expected.norm(dim=1, keepdim=True)
    assert old.packed_dim == 32 * 2 // 8 and not old.token_scale
    assert torch.equal(unpack_bits(residuals, 2), buckets)
    assert torch.allclose(old.decompress(codes, residuals), expected, atol=1e-6)


def test_codec_save_load_round_trip(tokens: torch.Tensor, tmp_path: Path) -> None:
    codec = ResidualCodec.train(tokens, nbits=4, num_centroids=32, seed=1)
    codec.save(tmp_path / "codec")
    again = ResidualCodec.load(tmp_path / "codec")
    codes, residuals = codec.compress(tokens[:100])
    assert torch.equal(again.decompress(codes, residuals), codec.decompress(codes, residuals))


def test_codec_rejects_bad_settings(tokens: torch.Tensor) -> None:
    with pytest.raises(OdqaError, match="nbits"):
        ResidualCodec.train(tokens, nbits=3, num_centroids=8)
    with pytest.raises(OdqaError, match="multiple of 8"):
        ResidualCodec.train(tokens[:, :12], nbits=2, num_centroids=8)


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
    pids = training_pids(100_000, seed=2)
    assert len(pids) == 1 + int(16 * np.sqrt(120 * 100_000))
    assert np.all(np.diff(pids) > 0)


def test_token_scale_lowers_the_error_and_takes_two_bytes(tokens: torch.Tensor) -> None:
    train, held = tokens[:-500], tokens[-500:]
    scaled = ResidualCodec.train(train, nbits=2, num_centroids=64, seed=0)
    centroids = scaled.centroids.float()
    unscaled = train - centroids[assign(train, centroids)]
    plain = ResidualCodec(scaled.centroids, 2, *lloyd_max(unscaled, 4), token_scale=False)
    assert scaled.token_scale and scaled.packed_dim == plain.packed_dim + 2

    def error(codec: ResidualCodec) -> float:
        return float((held - codec.decompress(*codec.compress(held))).norm(dim=1).mean())

    assert error(scaled) < error(plain)
    codes, residuals = scaled.compress(held)
    scales = residuals[:, -2:].contiguous().view(torch.float16).float().squeeze(1)
    rms = (held - scaled.centroids.float()[codes.long()]).pow(2).mean(1).sqrt()
    assert torch.corrcoef(torch.stack([scales, rms]))[0, 1] > 0.8  # follows each token
