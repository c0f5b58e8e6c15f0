"""Fuzzing the two places where odqa takes free-form input from strangers: the service's
JSON bodies and the command line's ``--where`` terms. Whatever comes in, the answer is a
result or a refusal in one line (422, 409, 413 for the service; an InputError the CLI prints
as one line) — never a 500, a traceback, or a message that cannot be printed.

Bounded (a fixed number of examples each, a derandomized seed, loopback only). The counts
are the ``max_examples`` below: 400 bodies for each of /search and /ask, 150 for
/documents, 1,500 ``--where`` term lists.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import odqa
from odqa.errors import InputError
from odqa.index.filters import document_mask, parse_where, parse_where_terms
from odqa.index.metadata import MetadataColumns, MetadataWriter
from odqa.read.answer import Answer
from odqa.server import create_app

ANY_CHARACTER = st.characters(codec=None, exclude_categories=())  # lone surrogates included
TEXT = st.text(ANY_CHARACTER, max_size=20) | st.sampled_from(
    ["vitamin", "year", "source", "", " ", "bm25", "hybrid", "dense", "pubmed", "\ud800"]
)
SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
)
JSON_VALUE = st.recursive(
    SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
WHERE = st.dictionaries(
    st.sampled_from(["year", "source", "open", "nested"]) | TEXT,
    SCALAR
    | st.lists(SCALAR, max_size=3)
    | st.dictionaries(st.sampled_from(["gte", "gt", "lte", "lt", "eq"]) | TEXT, SCALAR),
    max_size=3,
)
WORDS = st.sampled_from(["vitamin", "vitamin note 3", "note"])
"""Queries that match: the bodies reach the search, its filters and the reader."""
FUZZ = settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ANSWERS = {200, 409, 413, 422}
"""What the service may answer a stranger: never 500."""


def body(fields: dict) -> bytes:
    """``fields`` as JSON text, a lone surrogate written as its escape (as clients send it);
    NaN and infinities as Python writes them, which is not JSON (the service must refuse it)."""
    return json.dumps(fields, ensure_ascii=True).encode("ascii")


class EchoReader:
    def read(self, question, passages) -> Answer:
        return Answer(passages[0].text[:5] if passages else "", 1.0, "span", tuple(passages[:1]))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("fuzz")
    records = [
        {
            "id": f"d{i}",
            "text": f"vitamin note {i}",
            "metadata": {"year": 2000 + i, "source": "pubmed", "open": i % 2 == 0, "nested": [i]},
        }
        for i in range(12)
    ]
    corpus = folder / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    index = odqa.build_index(corpus, folder / "idx", retrievers=["bm25"], language="en")
    app = create_app(index, reader=EchoReader(), allow_writes=True)
    with TestClient(app, raise_server_exceptions=False) as opened:
        yield opened


def assert_refused_cleanly(response) -> None:
    assert response.status_code in ANSWERS, (response.status_code, response.text)
    if response.status_code != 200:
        detail = response.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and detail


@FUZZ
@given(
    st.fixed_dictionaries(
        {"query": WORDS | WORDS | TEXT | JSON_VALUE},
        optional={
            "k": st.integers(-5, 200) | JSON_VALUE,
            "retriever": st.sampled_from(["bm25", "hybrid", "colbert", "bm25+x"]) | JSON_VALUE,
            "where": WHERE | WHERE | JSON_VALUE,
            "extra": JSON_VALUE,
        },
    )
)
def test_search_bodies(client: TestClient, fields: dict) -> None:
    headers = {"Content-Type": "application/json"}
    assert_refused_cleanly(client.post("/search", content=body(fields), headers=headers))


@FUZZ
@given(
    st.fixed_dictionaries(
        {"question": WORDS | WORDS | TEXT | JSON_VALUE},
        optional={
            "top_k": st.integers(-5, 200) | JSON_VALUE,
            "retriever": st.sampled_from(["bm25", "hybrid"]) | JSON_VALUE,
            "where": WHERE | WHERE | JSON_VALUE,
        },
    )
)
def test_ask_bodies(client: TestClient, fields: dict) -> None:
    headers = {"Content-Type": "application/json"}
    assert_refused_cleanly(client.post("/ask", content=body(fields), headers=headers))


DOCUMENT = st.fixed_dictionaries(
    {
        "id": st.uuids().map(str) | TEXT | JSON_VALUE,
        "text": WORDS | TEXT | JSON_VALUE,
    },
    optional={
        "title": TEXT | JSON_VALUE,
        "metadata": st.dictionaries(TEXT, JSON_VALUE, max_size=3) | JSON_VALUE,
    },
)


@settings(FUZZ, max_examples=150)
@given(st.fixed_dictionaries({}, optional={"documents": st.lists(DOCUMENT, max_size=3)}))
def test_document_bodies(client: TestClient, fields: dict) -> None:
    headers = {"Content-Type": "application/json"}
    response = client.post("/documents", content=body(fields), headers=headers)
    assert_refused_cleanly(response)
    assert client.get("/health").status_code == 200


@pytest.fixture(scope="module")
def columns(tmp_path_factory: pytest.TempPathFactory) -> MetadataColumns:
    folder = tmp_path_factory.mktemp("fuzz-columns")
    writer = MetadataWriter(folder)
    metadata = [
        {"year": 2020, "source": "pubmed", "open": True, "big": float("inf")},
        {"year": 1999.5, "source": "pmc", "open": False, "nested": {"a": 1}},
        {"source": "x y", "year": None},
    ]
    writer.add([odqa.Document(f"d{i}", "t", "", meta) for i, meta in enumerate(metadata)])
    writer.close()
    return MetadataColumns(folder, len(metadata))


ARGV_TEXT = st.text(ANY_CHARACTER, max_size=30) | st.binary(max_size=30).map(os.fsdecode)
"""What a --where term can be: any text, or any bytes as Python decodes a command line."""
TERM = ARGV_TEXT | st.builds(
    lambda field, op, value: f"{field}{op}{value}",
    st.sampled_from(["year", "source", "open", "big", "nested", "missing"]) | ARGV_TEXT,
    st.sampled_from(["=", ">=", "<=", ">", "<", "=="]),
    ARGV_TEXT | st.sampled_from(["2020", "1e400", "true", '"007"', "a,b", "-0", "NaN", ""]),
)


@settings(FUZZ, max_examples=1500)
@given(st.lists(TERM, max_size=4))
def test_where_terms(columns: MetadataColumns, terms: list[str]) -> None:
    try:
        where = parse_where_terms(terms)
        kept = document_mask(columns, parse_where(where))
    except InputError as exc:
        line = f"error: {exc}"
        line.encode("utf-8")  # printable: the CLI writes it to stderr as UTF-8
        assert "\n" not in line or any("\n" in term for term in terms)
        return
    assert kept.dtype == np.bool_ and kept.shape == (3,)


def test_the_fuzzed_index_is_still_whole(client: TestClient, tmp_path: Path) -> None:
    response = client.post("/search", json={"query": "vitamin", "k": 50})
    assert response.status_code == 200
    assert {f"d{i}" for i in range(12)} <= {hit["doc_id"] for hit in response.json()["hits"]}
