"""Manifest and atomic directories: versions, damage, crashes mid-build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import odqa
from helpers import listing
from odqa.errors import IndexFormatError, OdqaError
from odqa.fs import atomic_directory
from odqa.index.manifest import FORMAT_VERSION, Manifest


def make_manifest() -> Manifest:
    return Manifest(
        source="corpus.jsonl",
        counts={"documents": 2, "passages": 3, "skipped_empty": 1},
        chunking={"tokens": 256, "overlap": 64, "tokenizer": "tiny"},
        retrievers={"bm25": {"k1": 0.9}},
    )


def test_manifest_round_trip_and_description(tmp_path: Path) -> None:
    make_manifest().write(tmp_path)
    again = Manifest.read(tmp_path)
    assert again.counts == {"documents": 2, "passages": 3, "skipped_empty": 1}
    assert again.format_version == FORMAT_VERSION
    text = again.describe()
    assert "documents: 2" in text and "retriever bm25: k1=0.9" in text


def test_newer_format_is_refused_with_versions_named(tmp_path: Path) -> None:
    make_manifest().write(tmp_path)
    data = json.loads((tmp_path / "manifest.json").read_text())
    data["format_version"] = FORMAT_VERSION + 1
    data["created_with"] = "odqa 9.0"
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(
        IndexFormatError, match=rf"format_version' is {FORMAT_VERSION + 1}, written by odqa 9.0"
    ):
        Manifest.read(tmp_path)


def test_missing_and_damaged_manifests(tmp_path: Path) -> None:
    with pytest.raises(IndexFormatError, match="not an odqa index"):
        Manifest.read(tmp_path)
    with pytest.raises(IndexFormatError, match="no such index directory"):
        Manifest.read(tmp_path / "nowhere")
    (tmp_path / "manifest.json").write_text('{"format_version": 1,\n oops')
    with pytest.raises(IndexFormatError, match=r"manifest.json:2: damaged"):
        Manifest.read(tmp_path)


def test_atomic_directory_commits_on_success(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    with atomic_directory(target) as staging:
        (staging / "a").write_text("new")
    assert (target / "a").read_text() == "new"
    assert listing(tmp_path) == ["idx"]


def test_atomic_directory_keeps_old_index_when_the_build_fails(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    target.mkdir()
    (target / "a").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(target, overwrite=True) as staging:
        (staging / "a").write_text("half")
        raise RuntimeError("crash")
    assert (target / "a").read_text() == "old"
    assert listing(tmp_path) == ["idx"]


def test_atomic_directory_refuses_existing_without_overwrite(tmp_path: Path) -> None:
    (tmp_path / "idx").mkdir()
    with pytest.raises(OdqaError, match="--overwrite"), atomic_directory(tmp_path / "idx"):
        pass


def test_overwrite_replaces_old_contents(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    target.mkdir()
    (target / "stale").write_text("x")
    with atomic_directory(target, overwrite=True) as staging:
        (staging / "fresh").write_text("y")
    assert [p.name for p in target.iterdir()] == ["fresh"]


def test_an_index_of_format_1_with_doc_ids_json_still_searches(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"id": f"doc-{i}", "text": f"passage {i} about topic{i % 3}"} for i in range(12)]
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    index = odqa.build_index(corpus, tmp_path / "idx", retrievers=["bm25"], language="en")
    ids = (index / "doc_ids.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert ids == [row["id"] for row in rows]
    with odqa.Searcher(index) as searcher:
        before = [hit.doc_id for hit in searcher.search(["topic1"], k=5)[0]]
    (index / "doc_ids.txt").unlink()
    (index / "doc_ids.offsets.npy").unlink()
    (index / "doc_ids.json").write_text(json.dumps(ids), encoding="utf-8")
    data = json.loads((index / "manifest.json").read_text())
    data.update(format_version=1, files=None)
    (index / "manifest.json").write_text(json.dumps(data))
    with odqa.Searcher(index) as searcher:
        assert [hit.doc_id for hit in searcher.search(["topic1"], k=5)[0]] == before
    assert before and all(doc_id in {"doc-1", "doc-4", "doc-7", "doc-10"} for doc_id in before)
