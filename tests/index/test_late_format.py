"""The late index's format 3 (Elias-Fano inverted lists, scale levels two tokens to a
byte) and the indexes written before it: format 2 (``tests/fixtures/late-format-2``, written
by odqa at 1c30510) and format 1, which still open, search and take updates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from odqa.errors import IndexFormatError
from odqa.index.late import (
    LateIndex,
    ProductCodec,
    add_passages,
    build_late_index,
    delete_passages,
    recluster,
)
from odqa.index.late.nibbles import NibbleAppender, unpack
from odqa.index.late.postings import LOW_WIDTHS, PostingLists, decode, encode, list_bytes
from odqa.index.late.storage import read_pids
from odqa.index.late.synthetic import make_collection, make_queries

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "late-format-2"


def random_lists(universe: int, count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, min(universe, 400) + 1, size=count)
    sizes[::5] = 0
    return [np.unique(rng.integers(0, universe, size=size)) for size in sizes]


@pytest.mark.parametrize("universe", [3, 300, 70_000, 1_000_000, 2**32 - 1])
def test_lists_read_back_what_was_coded(universe: int) -> None:
    lists = random_lists(universe, 60, seed=universe % 97)
    lengths = np.array([len(pids) for pids in lists])
    pids = np.concatenate(lists)
    data, sizes, widths = encode(pids, lengths)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    assert np.array_equal(decode(data, starts, widths, lengths), pids)
    chosen = np.random.default_rng(1).permutation(60)[:25]
    read = PostingLists(data, starts, widths, lengths).read(chosen)
    assert np.array_equal(read, np.concatenate([lists[i] for i in chosen]))


def test_each_list_takes_its_smallest_width() -> None:
    lists = random_lists(1_000_000, 40, seed=3) + random_lists(500, 40, seed=4)
    lengths = np.array([len(pids) for pids in lists])
    lasts = np.array([pids[-1] if len(pids) else 0 for pids in lists])
    _, sizes, _ = encode(np.concatenate(lists), lengths)
    every = np.stack([list_bytes(lengths, lasts, width) for width in LOW_WIDTHS])
    assert np.array_equal(sizes, every.min(axis=0))


def test_a_million_passages_take_about_twelve_bits_an_entry() -> None:
    """Lists as a 1M-passage index has them (about 1,000 random pids each): 3 bytes an
    entry as narrow pids, about 1.6 coded."""
    rng = np.random.default_rng(0)
    lists = [np.sort(rng.choice(1_000_000, 1_000, replace=False)) for _ in range(50)]
    data, _, _ = encode(np.concatenate(lists), np.full(50, 1_000))
    assert data.nbytes / 50_000 < 1.65


def test_levels_appended_in_odd_blocks_pack_as_one(tmp_path: Path) -> None:
    levels = np.random.default_rng(2).integers(0, 16, size=105).astype(np.uint8)
    first = NibbleAppender(tmp_path / "first.npy")
    for block in np.split(levels[:101], [3, 50, 51]):
        first.append(block)
    first.close(expected_tokens=101)
    packed = np.load(tmp_path / "first.npy")
    assert packed.shape == (51,)
    assert np.array_equal(unpack(packed, np.arange(101)), levels[:101])
    second = NibbleAppender(tmp_path / "second.npy")
    second.extend_packed(packed, 101)  # an odd count: the last half byte waits
    second.append(levels[101:])
    second.close(expected_tokens=105)
    assert np.array_equal(unpack(np.load(tmp_path / "second.npy"), np.arange(105)), levels)


def test_scale_levels_cost_little_against_a_float16_scale() -> None:
    tokens, _, _ = make_collection(400, 32, vocab=600, topics=20, seed=4)
    train, held = tokens[:-500], tokens[-500:]
    levels = ProductCodec.train(train, nbits=2, num_centroids=64, seed=0)
    assert levels.scale_levels is not None and levels.scale_levels.shape == (16,)
    assert bool((levels.scale_levels.diff() > 0).all())
    float16 = ProductCodec(levels.centroids, 2, levels.rotation, levels.codebooks)
    assert float16.packed_dim == levels.packed_dim + 1

    def cosines(codec: ProductCodec) -> torch.Tensor:
        return (codec.from_index_space(codec.decompress(*codec.compress(held))) * held).sum(1)

    assert abs(float(cosines(float16).mean() - cosines(levels).mean())) < 2e-3


def test_a_new_index_keeps_residual_bytes_and_levels_apart(tmp_path: Path) -> None:
    embeddings, doclens, _ = make_collection(300, 128, min_len=10, max_len=30, seed=5)
    folder = tmp_path / "index"
    with build_late_index(folder, nbits=2) as writer:
        writer.train(embeddings)
        writer.add(embeddings, doclens)
    meta = json.loads((folder / "late.json").read_text())
    tokens = int(doclens.sum())
    assert meta["format_version"] == 3 and tokens % 2  # an odd count: the last byte half full
    assert np.load(folder / "residuals.npy").shape == (tokens, 32)  # 128 x 2 bits
    assert np.load(folder / "scales.npy").shape == ((tokens + 1) // 2,)
    entries = int(np.load(folder / "ivf_lengths.npy").sum())
    assert np.load(folder / "ivf.npy").nbytes < 2 * entries  # narrow pids took 2 bytes
    Q, qmask, sources = make_queries(embeddings, doclens, 20, seed=1)
    assert (LateIndex(folder).search(Q, qmask, 10)[0][:, 0] == sources.numpy()).mean() >= 0.9


def small_index(folder: Path) -> Path:
    embeddings, doclens, _ = make_collection(40, 32, seed=6)
    with build_late_index(folder, nbits=2) as writer:
        writer.train(embeddings)
        writer.add(embeddings, doclens)
    return folder


def test_an_index_missing_its_levels_is_refused_by_name(tmp_path: Path) -> None:
    folder = small_index(tmp_path / "index")
    meta = json.loads((folder / "late.json").read_text())
    del meta["files"]["scales"]
    (folder / "late.json").write_text(json.dumps(meta))
    with pytest.raises(IndexFormatError, match="scales"):
        LateIndex(folder)


def test_a_cut_inverted_file_is_refused_by_name(tmp_path: Path) -> None:
    folder = small_index(tmp_path / "index")
    np.save(folder / "ivf.npy", np.load(folder / "ivf.npy")[:-3])
    with pytest.raises(IndexFormatError, match="ivf has shape"):
        LateIndex(folder)


@pytest.fixture
def format_two(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "format-2"))


def fixture_collection() -> tuple[torch.Tensor, torch.Tensor]:
    """The passages the fixture holds (as ``tests/fixtures/README.md`` says it was made)."""
    embeddings, doclens, _ = make_collection(120, 32, min_len=10, max_len=30, seed=8)
    return embeddings, doclens


def test_a_format_two_index_searches_and_moves_to_format_three_on_update(
    format_two: Path,
) -> None:
    embeddings, doclens = fixture_collection()
    Q, qmask, sources = make_queries(embeddings, doclens, 12, seed=2)
    old = LateIndex(format_two)
    assert (old.search(Q, qmask, 10)[0][:, 0] == sources.numpy()).mean() >= 0.9
    cells = np.arange(old.codec.num_centroids)
    old_lists, old_owners = old.store.ivf_lists(cells)
    old_vectors, _ = old.passages(list(range(120)))
    extra, extra_lens, _ = make_collection(30, 32, min_len=10, max_len=30, seed=9)
    add_passages(format_two, extra, extra_lens)
    meta = json.loads((format_two / "late.json").read_text())
    assert meta["format_version"] == 3 and "ivf_offsets" in meta["files"]
    assert "scales" not in meta["files"]  # the old codec keeps its float16 in each row
    index = LateIndex(format_two)
    lists, owners = index.store.ivf_lists(cells)
    kept = lists < 120
    assert np.array_equal(lists[kept], old_lists) and np.array_equal(owners[kept], old_owners)
    assert torch.equal(index.passages(list(range(120)))[0], old_vectors)
    Q2, qmask2, sources2 = make_queries(extra, extra_lens, 10, seed=3)
    assert (index.search(Q2, qmask2, 10)[0][:, 0] == sources2.numpy() + 120).mean() >= 0.9
    recluster(format_two)
    index = LateIndex(format_two)
    assert index.codec.scale_nibble and "scales" in index.meta["files"]
    assert (index.search(Q, qmask, 10)[0][:, 0] == sources.numpy()).mean() >= 0.9


def test_a_format_one_index_searches_as_format_two(format_two: Path, tmp_path: Path) -> None:
    """Format 1 listed pids as int32."""
    format_one = Path(shutil.copytree(format_two, tmp_path / "format-1"))
    np.save(format_one / "ivf.npy", read_pids(np.load(format_one / "ivf.npy")).astype(np.int32))
    meta = json.loads((format_one / "late.json").read_text())
    (format_one / "late.json").write_text(json.dumps({**meta, "format_version": 1}))
    embeddings, doclens = fixture_collection()
    Q, qmask, _ = make_queries(embeddings, doclens, 12, seed=2)
    expected = LateIndex(format_two).search(Q, qmask, 10)[0]
    assert np.array_equal(LateIndex(format_one).search(Q, qmask, 10)[0], expected)
    delete_passages(format_one, [int(expected[0, 0])])
    assert json.loads((format_one / "late.json").read_text())["format_version"] == 3
    assert int(expected[0, 0]) not in LateIndex(format_one).search(Q, qmask, 10)[0]
