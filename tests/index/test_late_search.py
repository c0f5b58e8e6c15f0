"""PLAID search against exhaustive MaxSim: overlap, scores, subsets, empty passages, reload."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from odqa.errors import IndexFormatError, InputError
from odqa.index.late import (
    ExactStore,
    LateIndex,
    PlaidSettings,
    build_late_index,
    exact_search,
    maxsim,
    plaid_defaults,
)
from odqa.index.late.synthetic import make_collection, make_queries

EMPTY = (0, 17, 150, 299)  # pids given no tokens


def collection() -> tuple[torch.Tensor, torch.Tensor]:
    embeddings, doclens, _ = make_collection(300, 32, min_len=20, max_len=60, seed=0)
    kept = torch.ones(len(doclens), dtype=torch.bool)
    kept[list(EMPTY)] = False
    token_kept = torch.repeat_interleave(kept, doclens)
    return embeddings[token_kept], torch.where(kept, doclens, 0)


@pytest.fixture(scope="module")
def corpus() -> tuple[torch.Tensor, torch.Tensor]:
    return collection()


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, corpus) -> Path:
    embeddings, doclens = corpus
    folder = tmp_path_factory.mktemp("late") / "index"
    half = int(doclens[:120].sum())
    with build_late_index(folder, nbits=2) as writer:
        writer.train(embeddings)
        assert writer.add(embeddings[:half], doclens[:120]).tolist() == list(range(120))
        assert writer.add(embeddings[half:], doclens[120:])[0] == 120
    return folder


@pytest.fixture(scope="module")
def index(index_dir: Path) -> LateIndex:
    return LateIndex(index_dir)


@pytest.fixture(scope="module")
def queries(corpus) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return make_queries(*corpus, 60, length=32, seed=1)


def overlap(found: np.ndarray, expected: np.ndarray) -> float:
    return float(
        np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, expected, strict=True)])
    )


def test_plaid_top10_matches_exhaustive_maxsim(index: LateIndex, queries) -> None:
    Q, qmask, sources = queries
    pids, scores = index.search(Q, qmask, 10)
    expected, _ = index.exhaustive(Q, qmask, 10)
    assert pids.shape == (60, 10) and pids.dtype == np.int64
    assert overlap(pids, expected) >= 0.95
    assert (pids[:, 0] == sources.numpy()).mean() >= 0.95
    D, dmask = index.passages(np.unique(pids))
    reference = maxsim(Q, qmask, D, dmask).numpy()
    columns = np.searchsorted(np.unique(pids), pids)
    np.testing.assert_allclose(scores, np.take_along_axis(reference, columns, 1), rtol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)


@pytest.mark.parametrize("k", [100, 150])
def test_larger_k_uses_wider_defaults_and_stays_close(index: LateIndex, queries, k: int) -> None:
    Q, qmask, _ = queries
    pids, _ = index.search(Q[:10], qmask[:10], k)
    expected, _ = index.exhaustive(Q[:10], qmask[:10], k)
    assert overlap(pids[:, :10], expected[:, :10]) >= 0.95
    assert len(np.unique(pids[pids >= 0])) > 0


def test_plaid_defaults_follow_colbert() -> None:
    assert plaid_defaults(10) == (1, 0.5, 256)
    assert plaid_defaults(100) == (2, 0.45, 1024)
    assert plaid_defaults(1000) == (4, 0.4, 4096)
    assert plaid_defaults(2000) == (4, 0.4, 8000)


def test_maxsim_matches_a_brute_force_double_loop() -> None:
    generator = torch.Generator().manual_seed(4)
    Q = torch.randn(3, 5, 8, generator=generator)
    D = torch.randn(4, 6, 8, generator=generator)
    qmask = torch.rand(3, 5, generator=generator) > 0.3
    dmask = torch.rand(4, 6, generator=generator) > 0.3
    dmask[:, 0] = True
    expected = np.zeros((3, 4))
    for i in range(3):
        for j in range(4):
            for a in range(5):
                if qmask[i, a]:
                    dots = [float(Q[i, a] @ D[j, b]) for b in range(6) if dmask[j, b]]
                    expected[i, j] += max(dots)
    np.testing.assert_allclose(maxsim(Q, qmask, D, dmask).numpy(), expected, rtol=1e-5)


def test_exact_store_agrees_with_maxsim_and_skips_empty_passages(corpus, queries) -> None:
    embeddings, doclens = corpus
    Q, qmask, sources = queries
    store = ExactStore(embeddings, doclens)
    pids, scores = store.search(Q, qmask, 5)
    assert (pids[:, 0] == sources.numpy()).all()
    assert not set(EMPTY) & set(pids.flatten().tolist())
    D, dmask = store.passages(pids[0])
    np.testing.assert_allclose(scores[0], maxsim(Q[:1], qmask[:1], D, dmask)[0], rtol=1e-5)
    again, _ = exact_search(Q, qmask, embeddings, doclens, 5)
    assert np.array_equal(again, pids)


def test_zero_length_passages_are_stored_but_never_returned(index: LateIndex, queries) -> None:
    Q, qmask, _ = queries
    assert index.num_passages == 300
    assert index.store.doclens[list(EMPTY)].tolist() == [0, 0, 0, 0]
    everything = list(range(300))
    for pids, _ in (
        index.search(Q, qmask, 300, subset=everything),
        index.exhaustive(Q, qmask, 300),
    ):
        assert not set(EMPTY) & set(pids.flatten().tolist())
        assert (pids[:, -len(EMPTY)] == -1).all()


def test_subset_restricts_results(index: LateIndex, queries) -> None:
    Q, qmask, _ = queries
    subset = list(range(1, 300, 3))
    pids, _ = index.search(Q, qmask, 10, subset=subset)
    assert set(pids.flatten().tolist()) <= set(subset)
    expected, _ = index.exhaustive(Q, qmask, 10, subset=subset)
    assert overlap(pids, expected) >= 0.95
    small, _ = index.search(Q, qmask, 10, subset=[5, 7])
    assert set(small[:, :2].flatten().tolist()) == {5, 7} and (small[:, 2:] == -1).all()


def test_query_without_tokens_finds_nothing(index: LateIndex, queries) -> None:
    Q, qmask, _ = queries
    qmask = qmask[:3].clone()
    qmask[1] = False
    pids, scores = index.search(Q[:3], qmask, 10)
    assert (pids[1] == -1).all() and np.isneginf(scores[1]).all()
    assert (pids[[0, 2]] >= 0).all()


@pytest.mark.slow
def test_explicit_parameters_and_no_pruning(index: LateIndex, queries) -> None:
    Q, qmask, _ = queries
    default, _ = index.search(Q, qmask, 10)
    wide, _ = index.search(Q, qmask, 10, ncells=8, centroid_score_threshold=-1.0, ndocs=2048)
    expected, _ = index.exhaustive(Q, qmask, 10)
    assert overlap(wide, expected) >= overlap(default, expected)


def test_passages_come_back_in_the_order_asked(index: LateIndex) -> None:
    forward, mask = index.passages([3, 7])
    backward, _ = index.passages([7, 3])
    assert torch.equal(forward[mask], backward.flip(0)[mask])


def test_reload_from_a_moved_folder(index_dir: Path, tmp_path: Path, queries) -> None:
    Q, qmask, _ = queries
    before = LateIndex(index_dir).search(Q, qmask, 10)
    moved = tmp_path / "elsewhere"
    shutil.copytree(index_dir, moved)
    after = LateIndex(moved).search(Q, qmask, 10)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert isinstance(LateIndex(moved).store.codes, np.memmap)


def test_codes_take_two_bytes_and_int32_codes_still_load(
    index_dir: Path, tmp_path: Path, queries
) -> None:
    Q, qmask, _ = queries
    assert np.load(index_dir / "codes.npy", mmap_mode="r").dtype == np.uint16
    before = LateIndex(index_dir).search(Q, qmask, 10)
    old = tmp_path / "int32"
    shutil.copytree(index_dir, old)
    np.save(old / "codes.npy", np.load(index_dir / "codes.npy").astype(np.int32))
    after = LateIndex(old).search(Q, qmask, 10)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])


def test_bad_input_is_reported(index: LateIndex, queries, tmp_path: Path) -> None:
    Q, qmask, _ = queries
    with pytest.raises(InputError, match="queries must have shape"):
        index.search(Q[..., :16], qmask, 10)
    with pytest.raises(InputError, match="pids must be in"):
        index.search(Q, qmask, 10, subset=[300])
    with pytest.raises(InputError, match="k must be"):
        index.search(Q, qmask, 0)
    with pytest.raises(IndexFormatError, match="not a late-interaction index"):
        LateIndex(tmp_path)


def test_interrupted_build_leaves_nothing(tmp_path: Path, corpus) -> None:
    embeddings, doclens = corpus
    with pytest.raises(RuntimeError), build_late_index(tmp_path / "index") as writer:
        writer.train(embeddings)
        writer.add(embeddings, doclens)
        raise RuntimeError("encoder crashed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_results(index_dir: Path, queries) -> None:
    Q, qmask, _ = queries
    cpu = LateIndex(index_dir).search(Q, qmask, 10)
    cuda = LateIndex(index_dir, device="cuda").search(Q, qmask, 10)
    assert overlap(cuda[0], cpu[0]) >= 0.99
    np.testing.assert_allclose(cuda[1], cpu[1], rtol=1e-4)


def test_plaid_settings_fill_defaults_and_refuse_nonsense() -> None:
    assert PlaidSettings().resolve(10) == plaid_defaults(10)
    assert PlaidSettings(ndocs=1024).resolve(10) == (1, 0.5, 1024)
    assert PlaidSettings(ncells=3, centroid_score_threshold=0.0).resolve(100) == (3, 0.0, 1024)
    for bad, field in (({"ncells": 0}, "ncells"), ({"ndocs": -5}, "ndocs")):
        with pytest.raises(InputError, match=f"{field} must be at least 1"):
            PlaidSettings(**bad)
    with pytest.raises(InputError, match="centroid_score_threshold"):
        PlaidSettings(centroid_score_threshold=float("nan"))


def test_ndocs_below_k_still_returns_k(index: LateIndex, queries) -> None:
    Q, qmask, _ = queries
    pids, _ = index.search(Q, qmask, 10, ncells=8, ndocs=2)
    assert (pids >= 0).all()
