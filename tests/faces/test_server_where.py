"""``where`` in the service: /search and /ask filter by metadata, bad filters are 422, and
documents added through /documents keep the metadata filters match."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import odqa
from odqa.read.answer import Answer, Evidence
from odqa.server import create_app


class FirstPassageReader:
    """Answers with the first passage's document id."""

    def read(self, question: str, passages: Sequence[Evidence]) -> Answer:
        return Answer(passages[0].doc_id if passages else "", 1.0, "span", tuple(passages[:1]))


@pytest.fixture()
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.delenv("ODQA_API_KEY", raising=False)
    records = [
        {"id": f"d{i}", "text": f"vitamin note {i}", "metadata": {"year": 2000 + i}}
        for i in range(20)
    ]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    index = odqa.build_index(corpus, tmp_path / "idx", retrievers=["bm25"], language="en")
    app = create_app(index, reader=FirstPassageReader(), allow_writes=True)
    with TestClient(app) as opened:
        yield opened


def test_search_and_ask_take_where(client: TestClient) -> None:
    where = {"year": {"gte": 2017}}
    response = client.post("/search", json={"query": "vitamin", "k": 5, "where": where})
    assert response.status_code == 200, response.text
    assert sorted(hit["doc_id"] for hit in response.json()["hits"]) == ["d17", "d18", "d19"]
    response = client.post("/ask", json={"question": "vitamin?", "where": {"year": 2005}})
    assert response.status_code == 200, response.text
    assert response.json()["answer"] == "d5"
    assert [hit["doc_id"] for hit in response.json()["passages"]] == ["d5"]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"year": {"after": 1}}, "gte, gt, lte and/or lt"),
        ({"year": []}, "empty list"),
        ("year=2020", "valid dictionary"),
        ({"colour": "red"}, "where.colour"),
        ({"year": "2005"}, "holds only numbers"),
    ],
)
def test_bad_filters_are_422_saying_why(client: TestClient, where: object, message: str) -> None:
    for path, body in (("/search", {"query": "vitamin"}), ("/ask", {"question": "vitamin?"})):
        response = client.post(path, json={**body, "where": where})
        assert response.status_code == 422, response.text
        assert message in response.json()["detail"]


def test_added_documents_keep_their_metadata_for_filters(client: TestClient) -> None:
    added = {"id": "n1", "text": "vitamin news", "metadata": {"year": 2040, "lang": "fr"}}
    assert client.post("/documents", json={"documents": [added]}).status_code == 200
    response = client.post("/search", json={"query": "vitamin", "where": {"lang": "fr"}})
    assert [hit["doc_id"] for hit in response.json()["hits"]] == ["n1"]
