"""Adding and deleting documents in a built index (BM25, dense and ColBERT together)."""

from __future__ import annotations

from pathlib import Path

import pytest

import odqa
from helpers import listing
from odqa.corpus import ChunkSpec, Document
from odqa.errors import InputError
from odqa.index.updates import add_documents, delete_documents


@pytest.fixture()
def index(tmp_path: Path, small_corpus: Path, tiny_model: Path) -> Path:
    return odqa.build_index(
        small_corpus,
        tmp_path / "idx",
        retrievers=["bm25", "dense", "colbert"],
        model=str(tiny_model),
        language="en",
        chunk=ChunkSpec(tokens=32, overlap=8),
    )


NEW = Document("n1", "Pellagra results from a lack of niacin in the diet.", "Pellagra")


def doc_ids(index: Path, query: str, retriever: str, k: int = 10) -> list[str]:
    hits = odqa.Searcher(index).search([query], k, retriever=retriever)[0]
    return [hit.doc_id for hit in hits]


@pytest.mark.parametrize("retriever", ["bm25", "dense", "colbert", "hybrid"])
def test_added_document_is_found_by_every_retriever(index: Path, retriever: str) -> None:
    report = add_documents(index, [NEW])
    assert report["added_documents"] == 1 and report["added_passages"] == 1
    assert "n1" in doc_ids(index, "niacin pellagra", retriever)
    hit = odqa.Searcher(index).search(["niacin pellagra"], 1, retriever="bm25")[0][0]
    assert hit.doc_id == "n1" and hit.passage.text == NEW.text
    assert odqa.Manifest.read(index).counts["documents"] == 7


@pytest.mark.parametrize("retriever", ["bm25", "dense", "colbert", "hybrid"])
def test_deleted_document_is_never_returned(index: Path, retriever: str) -> None:
    assert "d1" in doc_ids(index, "vitamin C scurvy", retriever)
    report = delete_documents(index, ["d1"])
    assert report == {"deleted_documents": 1, "deleted_passages": 1}
    assert "d1" not in doc_ids(index, "vitamin C scurvy", retriever)
    counts = odqa.Manifest.read(index).counts
    assert counts["documents"] == 5 and counts["deleted_documents"] == 1


def test_a_long_document_loses_all_its_passages(index: Path) -> None:
    searcher = odqa.Searcher(index)
    before = searcher.collection.num_passages
    report = delete_documents(index, ["d5"])
    assert report["deleted_passages"] > 1
    hits = odqa.Searcher(index).search(["ocean deep blue"], 10, unit="passage")[0]
    assert all(hit.doc_id != "d5" for hit in hits)
    assert odqa.Searcher(index).collection.num_passages == before  # rows never shift


def test_duplicate_and_unknown_ids_are_refused_and_change_nothing(index: Path) -> None:
    manifest = (index / "manifest.json").read_text()
    with pytest.raises(InputError, match="'d2' is already in the index"):
        add_documents(index, [Document("d2", "again")])
    with pytest.raises(InputError, match="no live document with id 'zz'"):
        delete_documents(index, ["zz"])
    assert (index / "manifest.json").read_text() == manifest
    assert listing(index.parent) == ["corpus.jsonl", "idx"]


def test_delete_then_add_the_same_id(index: Path) -> None:
    delete_documents(index, ["d3"])
    add_documents(index, [Document("d3", "Beriberi is a thiamine deficiency.", "Beriberi")])
    hits = odqa.Searcher(index).search(["thiamine"], 1, retriever="bm25")[0]
    assert hits[0].doc_id == "d3" and hits[0].passage.text == "Beriberi is a thiamine deficiency."


def test_interrupted_update_leaves_the_index_as_it_was(index: Path, monkeypatch) -> None:
    manifest = (index / "manifest.json").read_text()
    documents = (index / "documents.jsonl").read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("odqa.index.colbert.ColBERTKind.add", crash)  # after bm25 and dense
    with pytest.raises(KeyboardInterrupt):
        add_documents(index, [NEW])
    assert (index / "manifest.json").read_text() == manifest
    assert (index / "documents.jsonl").read_bytes() == documents
    assert "n1" not in doc_ids(index, "niacin pellagra", "colbert")
    assert "n1" not in doc_ids(index, "niacin pellagra", "bm25")
    assert listing(index.parent) == ["corpus.jsonl", "idx"]


@pytest.mark.parametrize("bad", ["two words", "", "tab\there", "nul\0"])
def test_added_ids_follow_the_readers_id_rule(index: Path, bad: str) -> None:
    manifest = (index / "manifest.json").read_text()
    with pytest.raises(InputError, match=r"document 2: id .* (contains|is empty)"):
        add_documents(index, [Document("ok1", "fine text"), Document(bad, "some text")])
    assert (index / "manifest.json").read_text() == manifest


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (Document("n1", "a \ud800 b"), "text"),
        (Document("n1", "fine", metadata={"source": "a\ud800"}), "metadata.source"),
        (Document("n1", "fine", metadata={"\udc00": 1}), "metadata"),
    ],
)
def test_added_text_and_metadata_must_be_unicode(
    index: Path, document: Document, field: str
) -> None:
    manifest = (index / "manifest.json").read_text()
    with pytest.raises(InputError, match=rf"^document 1: field '{field}': not valid Unicode"):
        add_documents(index, [document])
    assert (index / "manifest.json").read_text() == manifest
