"""The retriever-kind seam: a fourth kind, written as one small class, is built, searched,
fused, added to and deleted from by the same build, update and search code."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import odqa
from odqa.corpus import ChunkSpec, Document
from odqa.index import registry
from odqa.index.collection import Collection
from odqa.index.kind import CorpusPass, PassageBatch, Runtime, Settings

FOLDER = "overlap"


def words(text: str) -> set[str]:
    return {word.strip(".,?").lower() for word in text.split()}


class OverlapSearch:
    """Scores a passage by how many of the query's words it holds."""

    returns_deleted = True

    def __init__(self, texts: list[str]) -> None:
        self.texts = [words(text) for text in texts]

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = np.array([[len(words(q) & t) for t in self.texts] for q in queries], float)
        rows = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        found = np.take_along_axis(scores, rows, axis=1)
        return np.where(found > 0, rows, -1), found


class OverlapBuilder:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def tokenizer(self) -> None:
        return None

    def start(self, folder: Path, first: Sequence[Document], corpus: CorpusPass) -> None:
        self.folder = folder / FOLDER

    def add(self, batch: PassageBatch) -> None:
        self.texts += batch.texts

    def finish(self) -> Settings:
        self.folder.mkdir()
        (self.folder / "texts.json").write_text(json.dumps(self.texts))
        return {"passages": len(self.texts)}


class OverlapKind:
    name = "overlap"
    folder = FOLDER
    reranks = False

    def builder(self, options) -> OverlapBuilder:
        return OverlapBuilder()

    def add(self, index: Path, settings: Settings, batch: PassageBatch, runtime: Runtime) -> dict:
        path = index / FOLDER / "texts.json"
        texts = json.loads(path.read_text()) + list(batch.texts)
        path.unlink()  # a new file: the update works on a hard-linked copy
        path.write_text(json.dumps(texts))
        settings["passages"] = len(texts)
        return {"overlap_passages": len(texts)}

    def delete(self, index: Path, settings: Settings, rows: np.ndarray) -> None:
        settings["deleted_seen"] = settings.get("deleted_seen", 0) + len(rows)

    def open(self, index: Path, settings: Settings, options) -> OverlapSearch:
        return OverlapSearch(json.loads((index / FOLDER / "texts.json").read_text()))


@pytest.fixture()
def overlap_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.KINDS, "overlap", f"{__name__}:OverlapKind")


def test_a_new_kind_is_built_searched_fused_and_updated(
    overlap_kind: None, small_corpus: Path, tiny_model: Path, tmp_path: Path
) -> None:
    index = odqa.build_index(
        small_corpus,
        tmp_path / "idx",
        retrievers=["bm25", "overlap"],
        model=str(tiny_model),
        language="en",
        chunk=ChunkSpec(tokens=32, overlap=8),
    )
    manifest = odqa.Manifest.read(index)
    assert list(manifest.retrievers) == ["bm25", "overlap"]
    assert manifest.retrievers["overlap"]["passages"] == manifest.counts["passages"]
    with odqa.Searcher(index) as searcher:
        assert searcher.available == ["bm25", "overlap", "hybrid"]
        top = searcher.search(["lack of vitamin C"], 2, retriever="overlap")[0]
        assert top[0].doc_id == "d1" and top[0].score == 4.0
        assert searcher.search(["vitamin C scurvy"], 1)[0][0].doc_id == "d1"  # hybrid

    report = odqa.add_documents(index, [Document("n1", "Pellagra follows a lack of niacin.")])
    assert report["overlap_passages"] == manifest.counts["passages"] + 1
    with odqa.Searcher(index) as searcher:
        assert searcher.search(["niacin pellagra"], 1, retriever="overlap")[0][0].doc_id == "n1"

    odqa.delete_documents(index, ["n1"])
    assert odqa.Manifest.read(index).retrievers["overlap"]["deleted_seen"] == 1
    with odqa.Searcher(index) as searcher:
        hits = searcher.search(["niacin pellagra"], 3, retriever="overlap")[0]
        assert "n1" not in [hit.doc_id for hit in hits]
    collection = Collection(index)
    assert collection.num_deleted == 1
    collection.close()


def test_an_unknown_kind_is_refused_naming_the_known_ones(
    small_corpus: Path, tmp_path: Path
) -> None:
    with pytest.raises(odqa.OdqaError, match=r"among \('bm25', 'dense', 'colbert'\)"):
        odqa.build_index(small_corpus, tmp_path / "idx", retrievers=["overlap"])
    assert not (tmp_path / "idx").exists()
