"""Indexes written by earlier odqa releases (``tests/fixtures``, format 1 and 2) open, read
their settings back through the typed settings, search, and take an update."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import odqa
from odqa.index.settings import BM25Settings, ColBERTSettings, DenseSettings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize("format_version", [1, 2])
def test_recorded_settings_read_back_typed(format_version: int) -> None:
    record = json.loads(
        (FIXTURES / f"format-{format_version}-colbert-manifest.json").read_text(encoding="utf-8")
    )
    assert record["format_version"] == format_version
    retrievers = record["retrievers"]
    assert BM25Settings.recorded(retrievers["bm25"]) == BM25Settings()
    assert DenseSettings.recorded(retrievers["dense"]) == DenseSettings(refine=0)
    assert ColBERTSettings.recorded(retrievers["colbert"]) == ColBERTSettings()


@pytest.mark.slow
@pytest.mark.parametrize("format_version", [1, 2])
def test_an_old_index_opens_searches_and_takes_an_update(
    format_version: int, tmp_path: Path
) -> None:
    index = tmp_path / "idx"
    shutil.copytree(FIXTURES / f"format-{format_version}-index", index)
    manifest = odqa.Manifest.read(index)
    assert manifest.format_version == format_version and manifest.counts["documents"] == 6
    dense = DenseSettings.recorded(manifest.retrievers["dense"])
    assert dense == DenseSettings(dtype="float16", refine=0)
    with odqa.Searcher(index) as searcher:
        for retriever in ("bm25", "dense", "hybrid"):
            hits = searcher.search(["ALDH1 expression in breast cancer"], 3, retriever=retriever)
            assert hits[0], retriever
    new = odqa.Document("new1", "Scurvy is a disease caused by a lack of vitamin C in the diet.")
    report = odqa.add_documents(index, [new])
    assert report["added_documents"] == 1
    with odqa.Searcher(index) as searcher:
        for retriever in ("bm25", "dense"):
            top = searcher.search(["scurvy vitamin C"], 1, retriever=retriever)[0][0]
            assert top.doc_id == "new1", retriever


@pytest.mark.slow
def test_an_index_from_before_refining_searches_without_refine_vectors(tmp_path: Path) -> None:
    """Manifests written before dense refining existed have no ``refine``: it meant none."""
    index = tmp_path / "idx"
    shutil.copytree(FIXTURES / "format-2-index", index)
    manifest = odqa.Manifest.read(index)
    for key in ("refine", "nprobe"):
        del manifest.retrievers["dense"][key]
    manifest.write(index)
    with odqa.Searcher(index) as searcher:
        assert searcher.search(["ALDH1 expression in breast cancer"], 3, retriever="dense")[0]
    odqa.add_documents(index, [odqa.Document("new1", "Scurvy follows a lack of vitamin C.")])
