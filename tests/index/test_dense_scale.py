"""The dense build that streams: vectors read back by blocks, faiss trained on a capped
sample, and IVF-PQ's exact refine from the float16 vectors kept on disk."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest

import odqa
from odqa.corpus import ChunkSpec, Document
from odqa.index.dense import (
    INDEX_FILE,
    REFINE_FILE,
    DenseIndex,
    DenseSettings,
    DenseStore,
    VectorFile,
    factory_string,
)


def clustered(count: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors around 50 centres: close neighbours a coarse code cannot tell apart."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, dim))
    points = centres[rng.integers(0, 50, count)] + 0.3 * rng.standard_normal((count, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def word_corpus(path: Path, count: int) -> Path:
    """A JSONL corpus of ``count`` documents of three words out of eight and a number."""
    words = ["kinase", "ocean", "vitamin", "cell", "protein", "enzyme", "membrane", "gene"]
    lines = [
        {"id": f"d{i}", "text": f"{words[i % 8]} {words[(i // 8) % 8]} {words[(i // 64) % 8]} {i}"}
        for i in range(count)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def recall_at_10(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)]))


def test_vector_file_reads_back_by_blocks_and_samples_its_rows(tmp_path: Path) -> None:
    rows = clustered(1000, dim=8)
    vectors = VectorFile(tmp_path / "v.npy", 8, "float32")
    vectors.append(rows[:300])
    vectors.append(rows[300:])
    vectors.close()
    assert np.array_equal(np.load(tmp_path / "v.npy"), rows)  # a plain .npy
    blocks = list(vectors.blocks(block=128))
    assert [start for start, _ in blocks] == list(range(0, 1000, 128))
    assert np.array_equal(np.concatenate([block for _, block in blocks]), rows)
    sample = vectors.sample(100, seed=3)
    again = VectorFile.existing(tmp_path / "v.npy").sample(100, seed=3)
    assert sample.shape == (100, 8) and np.array_equal(sample, again)
    assert {tuple(row) for row in sample} <= {tuple(row) for row in rows}


def test_ivfpq_refine_reaches_exact_recall_the_codes_alone_do_not(tmp_path: Path) -> None:
    rows = clustered(5000)
    store = DenseStore(tmp_path, DenseSettings("ivfpq", refine=100, nprobe=1000), 32)
    for start in range(0, 5000, 700):
        store.add(rows[start : start + 700])
    settings = store.finish()
    assert settings["faiss"] == factory_string("ivfpq", "float32", 5000, 32) == "IVF128,PQ4"
    assert settings["refine"] == 100 and not (tmp_path / "vectors.tmp").exists()
    kept = np.load(tmp_path / "dense" / REFINE_FILE)
    assert kept.dtype == np.float16 and kept.shape == (5000, 32)
    queries = clustered(50, seed=1)
    exact = np.argsort(-(queries @ rows.T), axis=1)[:, :10]
    refined = DenseIndex(tmp_path / "dense", nprobe=1000, refine=100)
    codes_only = DenseIndex(tmp_path / "dense", nprobe=1000, refine=0)
    found, scores = refined.search_vectors(queries, 10)
    assert recall_at_10(found, exact) >= 0.9
    assert recall_at_10(codes_only.search_vectors(queries, 10)[0], exact) < 0.8
    expected = np.take_along_axis(queries @ rows.T, found, axis=1)
    np.testing.assert_allclose(scores, expected, atol=2e-3)  # exact scores (float16 vectors)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_flat_store_is_exact_and_leaves_no_temporary(tmp_path: Path) -> None:
    rows = clustered(300)
    store = DenseStore(tmp_path, DenseSettings("flat", refine=100), 32)
    store.add(rows)
    assert store.finish()["refine"] == 0  # refine is for ivfpq only
    assert sorted(p.name for p in (tmp_path / "dense").iterdir()) == ["dense.faiss"]
    assert not (tmp_path / "vectors.tmp").exists()
    index = faiss.read_index(str(tmp_path / "dense" / "dense.faiss"))
    assert np.array_equal(index.reconstruct_n(0, 300), rows)


def test_added_documents_get_refine_vectors_too(tmp_path: Path, tiny_model: Path) -> None:
    corpus = word_corpus(tmp_path / "corpus.jsonl", 1100)
    index = odqa.build_index(
        corpus,
        tmp_path / "index",
        model=str(tiny_model),
        retrievers=["dense"],
        chunk=ChunkSpec(tokens=32, overlap=8),
        dense=DenseSettings("ivfpq", nprobe=64),
    )
    settings = odqa.Manifest.read(index).retrievers["dense"]
    assert settings["refine"] == 100 and settings["nprobe"] == 64
    assert np.load(index / "dense" / REFINE_FILE, mmap_mode="r").shape == (1100, 64)
    built = {name: (index / "dense" / name).stat().st_ino for name in (INDEX_FILE, REFINE_FILE)}
    odqa.add_documents(index, [Document("new", "Scurvy follows a lack of vitamin C.")])
    after = {name: (index / "dense" / name).stat().st_ino for name in (INDEX_FILE, REFINE_FILE)}
    assert after == built  # the build's files are not rewritten: the addition has its own
    (added,) = (index / "dense" / "segments").glob("*.f16.npy")
    assert np.load(added).shape == (1, 64)
    hits = odqa.Searcher(index).search(["Scurvy follows a lack of vitamin C."], 1)[0]
    assert hits[0].doc_id == "new"


@pytest.mark.parametrize("kind", ["ivf", "ivfpq"])
def test_lists_are_capped_for_very_large_collections(kind: str) -> None:
    assert factory_string(kind, "float32", 10_000_000, 384).startswith("IVF4096,")
    assert factory_string(kind, "float32", 100_000, 384).startswith("IVF1264,")


def test_nprobe_at_search_time_overrides_the_index_and_reaches_the_exact_hits(
    tmp_path: Path, tiny_model: Path
) -> None:
    from typer.testing import CliRunner

    from odqa.cli import app

    corpus = word_corpus(tmp_path / "corpus.jsonl", 1100)

    def built(name: str, settings: DenseSettings) -> Path:
        return odqa.build_index(
            corpus, tmp_path / name, model=str(tiny_model), retrievers=["dense"], dense=settings
        )

    ivf, flat = built("ivf", DenseSettings("ivf", nprobe=1)), built("flat", DenseSettings())
    queries = ["vitamin cell gene", "ocean kinase", "membrane protein enzyme 7"]

    def rows(index: Path, options: odqa.SearchOptions | None = None) -> list[list[int]]:
        with odqa.Searcher(index, options) as searcher:
            found = searcher.search(queries, 10, unit="passage", with_text=False)
            engine = searcher.retriever("dense").engine
            probed = faiss.extract_index_ivf(engine.index).nprobe if index == ivf else None
            return [[hit.row for hit in hits] for hits in found], probed

    exact, _ = rows(flat)
    few, recorded = rows(ivf)
    lists = faiss.extract_index_ivf(faiss.read_index(str(ivf / "dense" / INDEX_FILE))).nlist
    every, probed = rows(ivf, odqa.SearchOptions(nprobe=lists))
    assert recorded == 1 and probed == lists > 1
    assert every == exact and few != exact  # one list of many misses exact neighbours
    result = CliRunner().invoke(app, ["search", str(ivf), "vitamin", "--nprobe", "0"])
    assert result.exit_code == 2 and "nprobe must be at least 1" in result.output
