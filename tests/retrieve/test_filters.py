"""Metadata filters: every retriever ranks only the documents a ``where`` keeps, so ``k``
filtered hits come back; the grammar (API and command line), its errors, and updates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest
from typer.testing import CliRunner

import odqa
from helpers import json_lines
from odqa.cli import app
from odqa.corpus import ChunkSpec, Document
from odqa.errors import IndexFormatError, InputError
from odqa.index.dense import INDEX_FILE, DenseIndex
from odqa.index.filters import parse_where, parse_where_terms
from odqa.index.manifest import Manifest
from odqa.index.updates import add_documents, delete_documents

RARE = (7, 23, 41)
"""The documents whose source is "rare": 3 of 50, none of them about scurvy."""


def corpus_records() -> list[dict]:
    records = []
    for i in range(50):
        about = "vitamin intake in diets" if i in RARE else "scurvy and vitamin C deficiency"
        metadata = {
            "year": 1990 + i,
            "source": "rare" if i in RARE else ["pubmed", "pmc"][i % 2],
            "open": i % 2 == 0,
        }
        if i % 5 == 0:
            metadata["tags"] = ["a", "b"]
        records.append({"id": f"d{i}", "text": f"Paper {i} on {about}.", "metadata": metadata})
    return records


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    folder = tmp_path_factory.mktemp("filters")
    corpus = folder / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in corpus_records()), encoding="utf-8")
    return odqa.build_index(
        corpus,
        folder / "idx",
        retrievers=["bm25", "dense", "colbert"],
        model=str(tiny_model),
        language="en",
        chunk=ChunkSpec(tokens=32, overlap=8),
    )


@pytest.fixture(scope="module")
def searcher(index: Path):
    with odqa.Searcher(index) as opened:
        yield opened


RETRIEVERS = ["bm25", "dense", "colbert", "hybrid", "bm25+colbert", "hybrid+colbert"]


@pytest.mark.parametrize("unit", ["document", "passage"])
@pytest.mark.parametrize("retriever", RETRIEVERS)
def test_every_retriever_returns_k_filtered_hits(searcher, retriever: str, unit: str) -> None:
    query = ["scurvy and vitamin C deficiency"]  # the 47 others match it best
    unfiltered = searcher.search(query, 3, retriever=retriever, unit=unit)[0]
    assert not {hit.doc_id for hit in unfiltered} & {f"d{i}" for i in RARE}
    hits = searcher.search(query, 3, retriever=retriever, unit=unit, where={"source": "rare"})[0]
    assert sorted(hit.doc_id for hit in hits) == sorted(f"d{i}" for i in RARE)
    assert [hit.rank for hit in hits] == [1, 2, 3]


def test_colbert_exhaustive_and_plaid_agree_under_a_filter(index: Path, searcher) -> None:
    where = {"year": {"gte": 2000, "lt": 2010}}
    plaid = searcher.search(["vitamin C"], 5, retriever="colbert", where=where)[0]
    with odqa.Searcher(index, exhaustive=True) as exact:
        best = exact.search(["vitamin C"], 5, retriever="colbert", where=where)[0]
    assert [hit.doc_id for hit in plaid] == [hit.doc_id for hit in best]
    assert {int(hit.doc_id[1:]) for hit in best} <= set(range(10, 20))


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"year": 1995}, {5}),
        ({"year": 1995.0}, {5}),
        ({"year": [1990, 1991, 3000]}, {0, 1}),
        ({"year": {"gte": 2035}}, set(range(45, 50))),
        ({"year": {"gt": 2035, "lte": 2037}}, {46, 47}),
        ({"source": ["rare", "nowhere"], "year": {"lt": 2020}}, {7, 23}),
        ({"open": True, "year": {"lt": 1996}}, {0, 2, 4}),
        ({"source": "pmc", "year": {"lt": 1996}}, {1, 3, 5}),
        ({"source": "1995"}, set()),
    ],
)
def test_conditions_keep_the_right_documents(searcher, where: dict, expected: set) -> None:
    hits = searcher.search(["vitamin"], 50, retriever="bm25", where=where)[0]
    assert {int(hit.doc_id[1:]) for hit in hits} == expected


@pytest.mark.parametrize(
    ("where", "field", "message"),
    [
        ({"country": "fr"}, "where.country", "its fields: open, source, tags, year"),
        ({"year": "1995"}, "where.year", "holds only numbers"),
        ({"source": {"gte": 1}}, "where.source", "a range needs numbers"),
        ({"tags": "a"}, "where.tags", "arrays or objects"),
        ({"year": {"from": 1}}, "where.year", "gte, gt, lte and/or lt"),
        ({"year": {"gte": "x"}}, "where.year", "must be a finite number"),
        ({"year": []}, "where.year", "empty list"),
        ({"year": None}, "where.year", "got null"),
        ({"year": [{"a": 1}]}, "where.year", "got dict"),
        ({"": 1}, "where", "non-empty strings"),
        (["year"], "where", "must be an object"),
    ],
)
def test_bad_filters_are_errors_naming_the_field(
    searcher, where: object, field: str, message: str
) -> None:
    with pytest.raises(InputError, match=message) as caught:
        searcher.search(["vitamin"], 3, where=where)
    assert caught.value.field == field


def test_command_line_terms_read_as_the_api_grammar() -> None:
    terms = ["year>=2018", "year<2021", "source=pubmed,pmc", "open=true", 'code="007"', "n=1.5"]
    assert parse_where_terms(terms) == {
        "year": {"gte": 2018, "lt": 2021},
        "source": ["pubmed", "pmc"],
        "open": True,
        "code": "007",
        "n": 1.5,
    }
    assert parse_where_terms(['place="Paris, TX"', "id=007", "n=-2e3"]) == {
        "place": "Paris, TX",
        "id": "007",  # not a JSON number: leading zeros keep it text
        "n": -2000.0,
    }
    assert parse_where(parse_where_terms(terms))  # what the command line gives, the API takes


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ("year", "expected FIELD=VALUE"),
        ("=5", "expected FIELD=VALUE"),
        ("year>=", "a value is missing"),
        ("year>=abc", "takes a number"),
        ("source=a,,b", "a value is missing"),
    ],
)
def test_bad_terms_are_errors_naming_the_term(term: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        parse_where_terms([term])
    assert repr(term) in str(caught.value)


def test_a_field_given_twice_is_refused() -> None:
    with pytest.raises(InputError, match="has a condition already"):
        parse_where_terms(["source=a", "source=b"])
    with pytest.raises(InputError, match="like it already"):
        parse_where_terms(["year>1", "year>2"])


def test_odqa_search_takes_where(index: Path) -> None:
    runner = CliRunner()
    args = ["search", str(index), "scurvy vitamin", "-k", "3", "-r", "bm25", "--json"]
    result = runner.invoke(app, [*args, "--where", "year<2020", "--where", "source=rare,x"])
    assert result.exit_code == 0, result.output
    assert sorted(hit["doc_id"] for hit in json_lines(result.output)) == ["d23", "d7"]
    result = runner.invoke(app, [*args, "--where", "year>=soon"])
    assert result.exit_code != 0 and "--where 'year>=soon': >= takes a number" in result.output
    result = runner.invoke(app, [*args, "--where", "colour=red"])
    assert result.exit_code != 0 and "field 'where.colour'" in result.output
    result = runner.invoke(app, ["info", str(index)])
    fields = "--where: year (numbers), source (strings), open (booleans)"
    assert fields in result.output  # tags holds arrays: not listed


def test_filters_follow_updates(index: Path, tmp_path: Path) -> None:
    copy = tmp_path / "idx"
    shutil.copytree(index, copy)
    added = Document("n1", "Paper on vitamin intake.", "", {"source": "rare", "lang": "fr"})
    add_documents(copy, [added])
    delete_documents(copy, ["d23"])
    with odqa.Searcher(copy) as searcher:
        for retriever in ("bm25", "dense", "colbert", "hybrid"):
            hits = searcher.search(["vitamin"], 5, retriever=retriever, where={"source": "rare"})
            assert sorted(hit.doc_id for hit in hits[0]) == ["d41", "d7", "n1"], retriever
        french = searcher.search(["paper"], 5, where={"lang": "fr"})[0]
        assert [hit.doc_id for hit in french] == ["n1"]
    # the update changed a copy: the index itself is as it was
    with odqa.Searcher(index) as original, pytest.raises(InputError, match=r"where\.lang"):
        original.search(["paper"], 5, where={"lang": "fr"})


def test_an_index_without_columns_says_to_rebuild(index: Path, tmp_path: Path) -> None:
    copy = tmp_path / "old"
    shutil.copytree(index, copy)
    shutil.rmtree(copy / "metadata")
    Manifest.read(copy, check=False).write(copy)
    with odqa.Searcher(copy) as searcher:
        assert searcher.search(["vitamin"], 2, retriever="bm25")[0]  # unfiltered: as before
        with pytest.raises(IndexFormatError, match="rebuild it"):
            searcher.search(["vitamin"], 2, where={"year": 1990})


@pytest.mark.parametrize("factory", ["IVF16,Flat", "HNSW32"])
def test_approximate_dense_kinds_find_a_small_allowed_set(tmp_path: Path, factory: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2000, 16)).astype(np.float32)
    stored = faiss.index_factory(16, factory, faiss.METRIC_INNER_PRODUCT)
    stored.train(vectors)
    stored.add(vectors)
    faiss.write_index(stored, str(tmp_path / INDEX_FILE))
    dense = DenseIndex(tmp_path, nprobe=1, ef_search=16)
    allowed = np.zeros(2000, bool)
    allowed[[5, 700, 1999]] = True
    rows, _ = dense.search_vectors(vectors[:4], 3, allowed)
    assert all(sorted(found) == [5, 700, 1999] for found in rows.tolist())
    allowed[:500] = True  # a larger set: k rows of it, none from outside
    rows, _ = dense.search_vectors(vectors[:4], 10, allowed)
    assert (rows >= 0).all() and allowed[rows].all()
