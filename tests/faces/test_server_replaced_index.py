"""A served index replaced on disk by another process (``odqa index NEW SERVED --overwrite``):
the service keeps serving one consistent index, notices the swap, and reopens the new one
whole; never the old index's documents with the new one's metadata."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import odqa
import odqa.fs as fs
from odqa.errors import IndexReplacedError
from odqa.server import create_app


def write_corpus(path: Path, prefix: str, year: int, count: int) -> Path:
    records = [
        {"id": f"{prefix}{i}", "text": f"vitamin note {i}", "metadata": {"year": year}}
        for i in range(count)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def build(corpus: Path, index: Path, overwrite: bool = False) -> Path:
    return odqa.build_index(corpus, index, retrievers=["bm25"], language="en", overwrite=overwrite)


@pytest.fixture(params=["exchange", "two renames"])
def swap_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "two renames":
        monkeypatch.setattr(fs, "exchange", lambda first, second: False)
    return request.param


@pytest.fixture()
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Path]]:
    monkeypatch.delenv("ODQA_API_KEY", raising=False)
    index = build(write_corpus(tmp_path / "old.jsonl", "old", 1990, 10), tmp_path / "idx")
    with TestClient(create_app(index)) as client:
        yield client, index


def search(client: TestClient, where: dict | None = None) -> list[str]:
    body = {"query": "vitamin", "k": 20} | ({"where": where} if where else {})
    response = client.post("/search", json=body)
    assert response.status_code == 200, response.text
    return sorted(hit["doc_id"] for hit in response.json()["hits"])


@pytest.mark.parametrize("new_count", [10, 14])
def test_a_replaced_index_is_served_whole_old_or_new_never_mixed(
    served: tuple[TestClient, Path], tmp_path: Path, swap_way: str, new_count: int
) -> None:
    client, index = served
    old_ids = [f"old{i}" for i in range(10)]
    new_ids = sorted(f"new{i}" for i in range(new_count))
    assert search(client) == sorted(old_ids)
    build(write_corpus(tmp_path / "new.jsonl", "new", 2000, new_count), index, overwrite=True)
    deadline = time.monotonic() + 30
    while True:  # every answer is the old index's or the new one's, filters included
        of_1990, of_2000 = search(client, {"year": 1990}), search(client, {"year": 2000})
        assert of_1990 in ([], sorted(old_ids)), of_1990
        assert of_2000 in ([], new_ids), of_2000  # the old index has no document of 2000
        if of_2000:
            break
        assert time.monotonic() < deadline, "the service never took up the new index"
        time.sleep(0.05)
    assert search(client) == new_ids
    assert search(client, {"year": 2000}) == new_ids
    assert search(client, {"year": 1990}) == []
    info = client.get("/info").json()
    assert info["index"]["documents"] == new_count
    assert info["serving"]["reopened"] == 1


def test_a_replacement_that_does_not_open_keeps_the_old_index_served(
    served: tuple[TestClient, Path], tmp_path: Path
) -> None:
    client, index = served
    build(write_corpus(tmp_path / "new.jsonl", "new", 2000, 3), index, overwrite=True)
    (index / "manifest.json").write_text("{", encoding="utf-8")  # damaged after the swap
    for _ in range(20):
        assert search(client, {"year": 1990}) == sorted(f"old{i}" for i in range(10))
        time.sleep(0.02)
    assert client.get("/info").json()["serving"]["reopened"] == 0


def test_a_searcher_refuses_to_open_files_of_a_replacement(tmp_path: Path, swap_way: str) -> None:
    index = build(write_corpus(tmp_path / "old.jsonl", "old", 1990, 5), tmp_path / "idx")
    with odqa.Searcher(index) as searcher:
        build(write_corpus(tmp_path / "new.jsonl", "new", 2000, 5), index, overwrite=True)
        with pytest.raises(IndexReplacedError, match="was replaced"):
            searcher.search(["vitamin"], 3, where={"year": 2000})


def test_a_replacement_never_takes_the_opened_directorys_identity(tmp_path: Path) -> None:
    """A directory's inode is reused once the directory is gone (ext4 hands it to the next
    directory made): the opened one's is held, so a replacement is always another directory.
    Without it, two updates in a row gave the path its first inode again, and a service that
    had not searched between them kept serving the first index."""
    index = build(write_corpus(tmp_path / "old.jsonl", "old", 1990, 3), tmp_path / "idx")
    with odqa.Searcher(index) as searcher:
        for number in range(4):
            odqa.add_documents(index, [odqa.Document(f"new{number}", "vitamin news")])
            assert fs.directory_identity(index) != searcher.identity
            with pytest.raises(IndexReplacedError):
                searcher.collection.check_unchanged()
