"""``odqa encode`` then ``odqa index --embeddings-from`` is the same code path as ``odqa index``
alone, by construction: the index it gives is the same, file by file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import odqa
from odqa.corpus import ChunkSpec
from odqa.index.builder import encode_corpus
from odqa.index.settings import ColBERTSettings

CHUNK = ChunkSpec(tokens=32, overlap=8)


def build(corpus: Path, target: Path, model: Path, **settings) -> Path:
    defaults = {"model": str(model), "language": "en", "chunk": CHUNK, "batch_docs": 4}
    return odqa.build_index(corpus, target, **{**defaults, **settings})


def files(index: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(index)): path.read_bytes()
        for path in sorted(index.rglob("*"))
        if path.is_file() and path.name != "manifest.json"
    }


def manifest_without_time(index: Path) -> dict:
    record = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    for key in ("created_at", "files"):
        record.pop(key, None)
    for retriever in record["retrievers"].values():
        retriever.pop("vectors_from", None)
    return record


def test_a_dense_index_from_encoded_vectors_is_the_encoded_index_file_by_file(
    tmp_path: Path, small_corpus: Path, tiny_model: Path
) -> None:
    vectors = encode_corpus(
        small_corpus, tmp_path / "vectors", model=str(tiny_model), chunk=CHUNK, dtype="float32",
        batch_docs=4, shard_passages=3,
    )  # fmt: skip
    direct = build(small_corpus, tmp_path / "direct", tiny_model)
    read = build(small_corpus, tmp_path / "read", tiny_model, embeddings_from=vectors)
    assert files(direct) == files(read)
    assert manifest_without_time(direct) == manifest_without_time(read)
    recorded = odqa.Manifest.read(read).retrievers["dense"]["vectors_from"]
    assert recorded == str(vectors.resolve())


def test_a_colbert_index_from_encoded_token_vectors_is_the_encoded_index(
    tmp_path: Path, small_corpus: Path, tiny_model: Path
) -> None:
    settings = {"retrievers": ["bm25", "colbert"], "colbert": ColBERTSettings(sample=4)}
    tokens = encode_corpus(
        small_corpus, tmp_path / "tokens", kind="colbert", model=str(tiny_model), chunk=CHUNK,
        batch_docs=4,
    )  # fmt: skip
    direct = build(small_corpus, tmp_path / "direct", tiny_model, **settings)
    read = build(small_corpus, tmp_path / "read", tiny_model, embeddings_from=tokens, **settings)
    first, second = files(direct), files(read)
    assert sorted(first) == sorted(second)
    differing = [name for name in first if first[name] != second[name]]
    # the same sample of documents trains the codec in both; the sample's vectors, which the
    # direct build encodes in one batch of their own, differ in the last bits from the
    # main pass's, so a token a rounding away from two centroids may take the other one
    assert all(name.startswith("colbert/") for name in differing), differing
    codes = [np.load(index / "colbert" / "codes.npy") for index in (direct, read)]
    assert (codes[0] == codes[1]).mean() >= 0.99
    assert manifest_without_time(direct) == manifest_without_time(read)
    queries = ["lack of vitamin C causes scurvy", "cell division"]
    exact = [
        odqa.Searcher(path, exhaustive=True).search(queries, 3, unit="passage")
        for path in (direct, read)
    ]
    for ours, theirs in zip(*exact, strict=True):
        assert [hit.row for hit in ours] == [hit.row for hit in theirs]
        assert [hit.score for hit in ours] == pytest.approx([h.score for h in theirs], abs=1e-2)
