"""Updates to a saved index: add, delete, recluster, and interruptions that change nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from odqa.index.late import (
    BucketCodec,
    LateIndex,
    ProductCodec,
    add_passages,
    build_late_index,
    delete_passages,
    recluster,
)
from odqa.index.late import updates as updates_module
from odqa.index.late.storage import LIST_ARRAYS, build_ivf
from odqa.index.late.synthetic import make_collection, make_queries


@pytest.fixture(scope="module")
def corpus() -> tuple[torch.Tensor, torch.Tensor]:
    embeddings, doclens, _ = make_collection(240, 32, min_len=20, max_len=50, seed=7)
    return embeddings, doclens


def split(corpus, first: int) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    embeddings, doclens = corpus
    cut = int(doclens[:first].sum())
    return (embeddings[:cut], doclens[:first]), (embeddings[cut:], doclens[first:])


@pytest.fixture
def index_dir(tmp_path: Path, corpus) -> Path:
    (embeddings, doclens), _ = split(corpus, 160)
    with build_late_index(tmp_path / "index", nbits=2) as writer:
        writer.train(embeddings)
        writer.add(embeddings, doclens)
    return tmp_path / "index"


def folder_state(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_added_passages_are_found(index_dir: Path, corpus) -> None:
    _, (embeddings, doclens) = split(corpus, 160)
    result = add_passages(index_dir, embeddings, doclens)
    assert result.pids.tolist() == list(range(160, 240))
    assert not result.recluster_advised
    index = LateIndex(index_dir)
    assert index.num_passages == 240 and index.meta["generation"] == 1
    Q, qmask, sources = make_queries(embeddings, doclens, 20, seed=3)
    pids, _ = index.search(Q, qmask, 10)
    assert (pids[:, 0] == sources.numpy() + 160).mean() >= 0.95
    files = {path.name for path in index_dir.iterdir()}
    assert "codes.1.npy" in files and "codes.npy" not in files  # old generation removed
    assert not any(name.endswith(".partial") for name in files)


def test_added_empty_passages_get_pids_but_never_match(index_dir: Path, corpus) -> None:
    _, (embeddings, _) = split(corpus, 160)
    result = add_passages(index_dir, embeddings[:40], torch.tensor([0, 40, 0]))
    assert result.pids.tolist() == [160, 161, 162]
    assert (
        add_passages(index_dir, embeddings[:0], torch.tensor([], dtype=torch.long)).pids.size == 0
    )
    index = LateIndex(index_dir)
    Q, qmask, _ = make_queries(embeddings[:40], torch.tensor([40]), 5, seed=2)
    pids, _ = index.search(Q, qmask, 163, subset=range(163))
    assert (pids[:, 0] == 161).all() and not {160, 162} & set(pids.flatten().tolist())


def test_add_advises_reclustering_past_twice_the_trained_tokens(index_dir: Path, corpus) -> None:
    embeddings, doclens = corpus
    assert not add_passages(index_dir, embeddings[:500], torch.tensor([200, 300])).recluster_advised
    assert add_passages(index_dir, embeddings, doclens).recluster_advised


def rebuilt_ivf(folder: Path, scratch: Path) -> dict[str, np.ndarray]:
    """The inverted file's four arrays built from scratch from ``folder``'s codes."""
    store = LateIndex(folder).store
    live = ~np.asarray(store.deleted) & (np.asarray(store.doclens) > 0)
    scratch.mkdir()
    build_ivf(scratch, 0, store.codes, store.doclens, live, store.codec.num_centroids)
    return {name: np.load(scratch / f"{name}.npy") for name in LIST_ARRAYS}


@pytest.mark.parametrize("added", [80, 140])  # 240 passages, then 300: pids past one byte
def test_added_entries_extend_the_inverted_file_as_a_rebuild_would(
    index_dir: Path, corpus, tmp_path: Path, added: int
) -> None:
    embeddings, doclens = corpus
    more = torch.cat([doclens[160:], doclens[:60]])[:added]
    vectors = torch.cat([embeddings[int(doclens[:160].sum()) :], embeddings])[: int(more.sum())]
    delete_passages(index_dir, [3, 50, 51])  # deleted pids stay out of the lists
    add_passages(index_dir, vectors, more)
    store = LateIndex(index_dir).store
    rebuilt = rebuilt_ivf(index_dir, tmp_path / "scratch")
    stored = {
        "ivf": store.lists.data,
        "ivf_lengths": store.ivf_lengths,
        "ivf_offsets": store.lists.starts,
        "ivf_widths": store.lists.widths,
    }
    for name, array in rebuilt.items():
        assert np.array_equal(stored[name], array), name
    assert 3 not in store.ivf_lists(np.arange(store.codec.num_centroids))[0]


def test_deleted_pids_are_never_returned(index_dir: Path, corpus) -> None:
    (embeddings, doclens), _ = split(corpus, 160)
    Q, qmask, sources = make_queries(embeddings, doclens, 30, seed=4)
    gone = sorted(set(sources.tolist()))[:10]
    assert delete_passages(index_dir, gone) == 10
    assert delete_passages(index_dir, gone[:3]) == 0
    index = LateIndex(index_dir)
    assert index.meta["num_deleted"] == 10 and index.num_passages == 160
    results = [
        index.search(Q, qmask, 20)[0],
        index.search(Q, qmask, 20, subset=[*gone, 1, 2])[0],
        index.exhaustive(Q, qmask, 200)[0],
    ]
    for pids in results:
        assert not set(gone) & set(pids.flatten().tolist())


def test_recluster_retrains_and_reencodes(index_dir: Path, corpus) -> None:
    _, (embeddings, doclens) = split(corpus, 160)
    add_passages(index_dir, embeddings, doclens)
    delete_passages(index_dir, [3])
    before = LateIndex(index_dir)
    codec = recluster(index_dir, seed=1)
    index = LateIndex(index_dir)
    assert index.meta["tokens_at_training"] == index.meta["num_tokens"]
    assert index.meta["num_centroids"] == codec.num_centroids
    assert index.meta["files"]["codec"] == "codec.3"
    assert not (index_dir / "codec").exists()
    D_before, mask = before.passages([5, 200])
    D_after, _ = index.passages([5, 200])
    cosine = (D_before * D_after).sum(-1)[mask]
    assert float(cosine.mean()) > 0.95
    Q, qmask, sources = make_queries(embeddings, doclens, 20, seed=5)
    pids, _ = index.search(Q, qmask, 10)
    assert (pids[:, 0] == sources.numpy() + 160).mean() >= 0.95
    assert 3 not in index.exhaustive(Q, qmask, 240)[0]


def test_recluster_shows_its_re_encoding_on_a_bar(
    index_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Re-encoding every token is the long part of a re-clustering (tens of minutes at 1M
    passages): with ``show_progress`` it counts the tokens on a bar with an ETA; without, it
    prints nothing."""
    tokens = LateIndex(index_dir).meta["num_tokens"]
    recluster(index_dir)
    assert "re-encoding" not in capfd.readouterr().err
    recluster(index_dir, show_progress=True)
    bar = capfd.readouterr().err
    assert "re-encoding" in bar
    assert f"{tokens}/{tokens}" in bar


def bucket_index(folder: Path, embeddings: torch.Tensor, doclens: torch.Tensor) -> Path:
    """An index as releases before the product codec wrote it: per-value buckets, no scale,
    int32 codes."""
    with build_late_index(folder, nbits=2) as writer:
        product = writer.train(embeddings)
        centroids = product.from_index_space(product.centroids.float())
        cutoffs, weights = torch.tensor([-0.05, 0.0, 0.05]), torch.tensor([-0.1, -0.02, 0.02, 0.1])
        writer.codec = BucketCodec(centroids, 2, cutoffs, weights, token_scale=False)
        writer.codec.save(writer.folder / "codec")
        writer.add(embeddings, doclens)
    np.save(folder / "codes.npy", np.load(folder / "codes.npy").astype(np.int32))
    return folder


def test_indexes_with_the_bucket_codec_take_updates_and_move_on_recluster(
    tmp_path: Path, corpus
) -> None:
    (first, first_lens), (added, added_lens) = split(corpus, 160)
    folder = bucket_index(tmp_path / "old", first, first_lens)
    assert isinstance(LateIndex(folder).codec, BucketCodec)
    add_passages(folder, added, added_lens)
    Q, qmask, sources = make_queries(added, added_lens, 20, seed=3)
    pids, _ = LateIndex(folder).search(Q, qmask, 10)
    assert (pids[:, 0] == sources.numpy() + 160).mean() >= 0.9
    recluster(folder)
    index = LateIndex(folder)
    assert isinstance(index.codec, ProductCodec)
    assert np.load(folder / index.meta["files"]["codes"], mmap_mode="r").dtype == np.uint16
    pids, _ = index.search(Q, qmask, 10)
    assert (pids[:, 0] == sources.numpy() + 160).mean() >= 0.9


@pytest.mark.parametrize("update", ["add", "delete", "recluster"])
def test_interrupted_update_keeps_the_previous_index(
    index_dir: Path, corpus, monkeypatch: pytest.MonkeyPatch, update: str
) -> None:
    _, (embeddings, doclens) = split(corpus, 160)
    Q, qmask, _ = make_queries(embeddings, doclens, 10, seed=6)
    before_results = LateIndex(index_dir).search(Q, qmask, 10)
    before_files = folder_state(index_dir)

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    # add codes the inverted file's lists again with the new entries, the others rebuild it
    monkeypatch.setattr(updates_module, "write_lists" if update == "add" else "build_ivf", crash)
    with pytest.raises(KeyboardInterrupt):
        if update == "add":
            add_passages(index_dir, embeddings, doclens)
        elif update == "delete":
            delete_passages(index_dir, [1, 2])
        else:
            recluster(index_dir)
    assert folder_state(index_dir) == before_files
    after_results = LateIndex(index_dir).search(Q, qmask, 10)
    assert np.array_equal(before_results[0], after_results[0])
