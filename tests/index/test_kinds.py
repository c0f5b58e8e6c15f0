"""The retriever-kind seam: a fourth kind, written as one module and registered with one
line, is built (from the command line, its own flag included), searched, filtered, fused,
added to and deleted from by the same build, update and search code; a kind that lacks a
verb is refused when registered, naming it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import odqa
from odqa.cli import app
from odqa.encode import EncodedBatch
from odqa.index import catalog, registry
from odqa.index.collection import Collection
from odqa.index.kind import (
    BuildStart,
    Footprint,
    KindBuilder,
    Record,
    RetrieverKind,
    RowSearcher,
    Runtime,
)
from odqa.index.settings import KindSettings, option

FOLDER = "overlap"


def words(text: str) -> set[str]:
    return {word.strip(".,?").lower() for word in text.split()}


@dataclass(frozen=True)
class OverlapSettings(KindSettings):
    """How many of the query's words a passage must hold to match."""

    min_words: int = option(1, "--overlap-min-words", "Words a passage must share to match.")


class OverlapSearch(RowSearcher):
    """Scores a passage by how many of the query's words it holds."""

    def __init__(self, texts: list[str], min_words: int) -> None:
        self.texts = [words(text) for text in texts]
        self.min_words = min_words

    def search(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = np.array([[len(words(q) & t) for t in self.texts] for q in queries], float)
        if allowed is not None:
            scores[:, ~allowed] = 0
        rows = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        found = np.take_along_axis(scores, rows, axis=1)
        return np.where(found >= self.min_words, rows, -1), found


class OverlapBuilder(KindBuilder):
    def __init__(self, settings: OverlapSettings) -> None:
        self.settings = settings
        self.texts: list[str] = []

    def start(self, start: BuildStart) -> None:
        self.folder = start.folder / FOLDER

    def add(self, batch: EncodedBatch) -> None:
        self.texts += batch.texts

    def footprint(self, passages: int) -> Footprint:
        per_passage = sum(map(len, self.texts)) / max(1, len(self.texts))
        return Footprint(disk=int(per_passage * passages), memory=int(per_passage * passages))

    def finish(self) -> Record:
        self.folder.mkdir()
        (self.folder / "texts.json").write_text(json.dumps(self.texts))
        return {**self.settings.record(), "passages": len(self.texts)}


class OverlapKind(RetrieverKind):
    name = "overlap"
    folder = FOLDER
    settings = OverlapSettings
    builder_class = OverlapBuilder
    searcher_class = OverlapSearch

    def builder(self, settings, options) -> OverlapBuilder:
        return OverlapBuilder(settings)

    def add(
        self, index: Path, record: Record, batch: EncodedBatch, runtime: Runtime, first_row: int
    ) -> dict:
        path = index / FOLDER / "texts.json"
        texts = json.loads(path.read_text()) + list(batch.texts)
        path.unlink()  # a new file: the update works on a hard-linked copy
        path.write_text(json.dumps(texts))
        record["passages"] = len(texts)
        return {"overlap_passages": len(texts)}

    def delete(self, index: Path, record: Record, rows: np.ndarray) -> None:
        record["deleted_seen"] = record.get("deleted_seen", 0) + len(rows)

    def open(self, index: Path, record: Record, options) -> OverlapSearch:
        texts = json.loads((index / FOLDER / "texts.json").read_text())
        return OverlapSearch(texts, OverlapSettings.recorded(record).min_words)


SETTINGS = f"{__name__}:OverlapSettings"


@pytest.fixture()
def overlap_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one registry line a new kind needs."""
    monkeypatch.setitem(catalog.KINDS, "overlap", (f"{__name__}:OverlapKind", SETTINGS))


def corpus_with_metadata(tmp_path: Path) -> Path:
    records = [
        {"id": "d1", "text": "Scurvy follows a lack of vitamin C.", "metadata": {"year": 1900}},
        {"id": "d2", "text": "Rickets follows a lack of vitamin D.", "metadata": {"year": 2000}},
        {"id": "d3", "text": "Beriberi follows a lack of thiamine.", "metadata": {"year": 2000}},
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def test_a_new_kind_is_built_from_the_command_line_searched_filtered_and_updated(
    overlap_kind: None, tmp_path: Path
) -> None:
    runner = CliRunner()
    assert "--overlap-min-words" in runner.invoke(app, ["index", "--help"]).output
    index = tmp_path / "idx"
    command = ["index", str(corpus_with_metadata(tmp_path)), str(index)]
    result = runner.invoke(
        app,
        [*command, "--retrievers", "bm25,overlap", "--language", "en", "--overlap-min-words", "2"],
    )
    assert result.exit_code == 0, result.output
    assert "needs about" in result.output and "overlap" in result.output  # the plan line
    manifest = odqa.Manifest.read(index)
    assert list(manifest.retrievers) == ["bm25", "overlap"]
    assert manifest.retrievers["overlap"] == {"min_words": 2, "passages": 3}
    with odqa.Searcher(index) as searcher:
        assert searcher.available == ["bm25", "overlap", "hybrid"]
        top = searcher.search(["lack of vitamin"], 3, retriever="overlap")[0]
        assert [hit.doc_id for hit in top][:2] == ["d1", "d2"] and top[0].score == 3.0
        assert [h.doc_id for h in searcher.search(["thiamine"], 3, retriever="overlap")[0]] == []
        filtered = searcher.search(
            ["lack of vitamin"], 3, retriever="overlap", where={"year": 2000}
        )
        assert [hit.doc_id for hit in filtered[0]] == ["d2", "d3"]
        assert searcher.search(["vitamin C scurvy"], 1)[0][0].doc_id == "d1"  # hybrid

    report = odqa.add_documents(index, [odqa.Document("n1", "Pellagra follows a lack of niacin.")])
    assert report["overlap_passages"] == 4
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


class BuilderWithoutFootprint(KindBuilder):  # what the old example kind looked like
    def start(self, start: BuildStart) -> None: ...

    def add(self, batch: EncodedBatch) -> None: ...

    def finish(self) -> Record:
        return {}


class SearchWithoutAllowed(RowSearcher):
    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0))


class SearchWithoutSearch(RowSearcher):
    pass


class KindWithoutOpen(RetrieverKind):
    name = "overlap"
    folder = FOLDER
    settings = OverlapSettings
    builder_class = OverlapBuilder
    searcher_class = OverlapSearch

    def builder(self, settings, options) -> OverlapBuilder:
        return OverlapBuilder(settings)

    def add(
        self, index: Path, record: Record, batch: EncodedBatch, runtime: Runtime, first_row: int
    ) -> dict:
        return {}

    def delete(self, index: Path, record: Record, rows: np.ndarray) -> None: ...


class KindWithBuilderWithoutFootprint(OverlapKind):
    builder_class = BuilderWithoutFootprint


class KindWithSearchWithoutAllowed(OverlapKind):
    searcher_class = SearchWithoutAllowed


class KindWithSearchWithoutSearch(OverlapKind):
    searcher_class = SearchWithoutSearch


class KindWithAPlainBuilder(OverlapKind):
    builder_class = object


@pytest.mark.parametrize(
    ("kind", "named"),
    [
        ("KindWithBuilderWithoutFootprint", r"its builder_class lacks footprint\(\)"),
        ("KindWithoutOpen", r"the kind lacks open\(\)"),
        ("KindWithSearchWithoutSearch", r"its searcher_class lacks search\(\)"),
        ("KindWithSearchWithoutAllowed", r"search\(\) takes no 'allowed'"),
        ("KindWithAPlainBuilder", r"its builder_class is not a subclass of .*KindBuilder"),
    ],
)
def test_a_kind_lacking_a_verb_is_refused_when_registered_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str, named: str
) -> None:
    monkeypatch.setitem(catalog.KINDS, "overlap", (f"{__name__}:{kind}", SETTINGS))
    with pytest.raises(odqa.OdqaError, match=named):
        registry.kind_named("overlap")
    with pytest.raises(odqa.OdqaError, match=named):
        odqa.build_index(corpus_with_metadata(tmp_path), tmp_path / "idx", retrievers=["overlap"])
    assert not (tmp_path / "idx").exists()


def test_an_unknown_kind_is_refused_naming_the_known_ones(
    small_corpus: Path, tmp_path: Path
) -> None:
    with pytest.raises(odqa.OdqaError, match=r"among \('bm25', 'dense', 'colbert'\)"):
        odqa.build_index(small_corpus, tmp_path / "idx", retrievers=["overlap"])
    assert not (tmp_path / "idx").exists()


def test_kind_settings_round_trip_through_the_manifest_with_one_default() -> None:
    from odqa.index.settings import BM25Settings, ColBERTSettings, DenseSettings

    for settings in (
        BM25Settings(method="bm25+", k1=1.2, b=0.7, delta=1.0),
        DenseSettings(index="ivfpq", dtype="float16", refine=50, nprobe=8),
        ColBERTSettings(nbits=4, sample=100),
        OverlapSettings(min_words=3),
    ):
        assert type(settings).recorded(settings.record()) == settings
    assert BM25Settings.recorded({}) == BM25Settings()  # an older record: defaults, but
    assert DenseSettings.recorded({}) == DenseSettings(refine=0)  # refining came later
    assert DenseSettings().record() == {
        "kind": "flat",
        "dtype": "float32",
        "refine": 0,
        "nprobe": 32,
    }
