"""Hard-negative mining: the rank window, no positives, seeded draws, shortfalls, ``odqa mine``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import odqa
from odqa.cli.train import MINE_EPILOG, mine
from odqa.corpus.records import Query
from odqa.errors import OdqaError
from odqa.evaluate.runs import ranked
from odqa.train.data import read_training_data
from odqa.train.mining import mine_negatives, write_mined

WORDS = ["vitamin", "deficiency", "scurvy", "rickets", "thiamine", "niacin", "iron", "zinc"]
QUERIES = [
    Query("q1", "vitamin deficiency"),
    Query("q2", "scurvy vitamin"),
    Query("q3", "iron zinc deficiency"),
    Query("q4", "niacin thiamine"),
]
QRELS = {"q1": {"d03": 1, "d07": 0}, "q2": {"d02": 2, "d11": 1}, "q3": {"d05": 1}, "q4": {}}


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    """Thirty documents sharing words, so that every query ranks many of them."""
    docs = [
        {
            "id": f"d{number:02d}",
            "title": f"Note {number}",
            "text": " ".join(
                WORDS[(number + shift) % len(WORDS)] for shift in range(number % 5 + 2)
            ),
        }
        for number in range(30)
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs), encoding="utf-8")
    return path


@pytest.fixture()
def searcher(tmp_path: Path, corpus: Path) -> odqa.Searcher:
    return odqa.Searcher(odqa.build_index(corpus, tmp_path / "idx", retrievers=["bm25"]))


def window(searcher: odqa.Searcher, query: Query, first: int, last: int) -> list[str]:
    run = odqa.run_queries(searcher, [query], k=last)
    return [doc_id for doc_id, _ in ranked(run[query.id])[first - 1 : last]]


def test_negatives_come_from_the_rank_window(searcher: odqa.Searcher) -> None:
    examples, stats = mine_negatives(searcher, QUERIES, QRELS, ranks=(3, 12), per_query=3)
    assert [(e.query_id, e.positive_id) for e in examples] == [
        ("q1", "d03"),
        ("q2", "d02"),
        ("q2", "d11"),
        ("q3", "d05"),
    ]
    by_query = {query.id: query for query in QUERIES}
    for example in examples:
        allowed = window(searcher, by_query[example.query_id], 3, 12)
        relevant = {doc for doc, grade in QRELS[example.query_id].items() if grade > 0}
        assert len(example.negative_ids) == 3
        assert set(example.negative_ids) <= set(allowed) - relevant
        assert sorted(example.negative_ids, key=allowed.index) == list(example.negative_ids)
        collection = searcher.collection
        documents = {doc_id: collection.document(n) for n, doc_id in enumerate(collection.doc_ids)}
        expected = tuple(f"{documents[d].title} {documents[d].text}" for d in example.negative_ids)
        assert example.negatives == expected
        positive = documents[example.positive_id]
        assert example.positive == f"{positive.title} {positive.text}"
    assert stats.queries == 3 and stats.examples == 4 and stats.negatives == 12
    assert stats.unjudged_queries == 1 and stats.short_queries == 0
    assert stats.missing_positives == 0


def test_relevant_documents_are_never_negatives(searcher: odqa.Searcher) -> None:
    query = QUERIES[0]
    top = window(searcher, query, 1, 30)
    assert len(top) >= 8
    qrels = {"q1": {doc_id: 1 for doc_id in top[:-3]}}
    examples, stats = mine_negatives(searcher, [query], qrels, ranks=(1, 30), per_query=10)
    assert stats.examples == len(top) - 3
    for example in examples:
        assert set(example.negative_ids) == set(top[-3:])
    assert stats.short_queries == 1


def test_draws_are_seeded(searcher: odqa.Searcher) -> None:
    def draw(seed: int) -> list[tuple[str, ...]]:
        examples, _ = mine_negatives(
            searcher, QUERIES, QRELS, ranks=(1, 20), per_query=3, seed=seed
        )
        return [example.negative_ids for example in examples]

    assert draw(0) == draw(0)
    assert draw(0) != draw(1)


def test_shortfall_and_missing_positives(searcher: odqa.Searcher) -> None:
    qrels = {"q1": {"d03": 1, "gone": 1}, "q3": {"d05": 1}}
    examples, stats = mine_negatives(searcher, QUERIES, qrels, ranks=(5, 6), per_query=4)
    assert [len(example.negative_ids) for example in examples] == [2, 2]
    assert stats.short_queries == 2 and stats.negatives == 4
    assert stats.missing_positives == 1 and stats.unjudged_queries == 2


@pytest.mark.parametrize(("ranks", "per_query"), [((0, 10), 4), ((20, 10), 4), ((1, 10), 0)])
def test_bad_settings(searcher: odqa.Searcher, ranks: tuple[int, int], per_query: int) -> None:
    with pytest.raises(OdqaError):
        mine_negatives(searcher, QUERIES, QRELS, ranks=ranks, per_query=per_query)


def test_written_file_reads_back_as_training_data(searcher: odqa.Searcher, tmp_path: Path) -> None:
    examples, _ = mine_negatives(searcher.path, QUERIES, QRELS, ranks=(2, 8), per_query=2)
    path = write_mined(tmp_path / "out" / "train.jsonl", examples)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert list(lines[0]) == [
        "query_id",
        "query",
        "positive_id",
        "positive",
        "negative_ids",
        "negatives",
    ]
    read = read_training_data(path)
    assert [(e.query, e.texts) for e in read] == [
        (e.query, (e.positive, *e.negatives)) for e in examples
    ]
    assert [p.name for p in path.parent.iterdir()] == ["train.jsonl"]


@pytest.fixture()
def cli_inputs(tmp_path: Path) -> tuple[Path, Path]:
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps({"id": q.id, "text": q.text}) + "\n" for q in QUERIES))
    qrels = tmp_path / "qrels.txt"
    qrels.write_text(
        "".join(f"{q} 0 {d} {g}\n" for q, docs in QRELS.items() for d, g in docs.items())
    )
    return queries, qrels


def run_mine(*args: object):
    app = typer.Typer()
    app.command(epilog=MINE_EPILOG)(mine)
    app.callback()(lambda: None)
    return CliRunner().invoke(app, ["mine", *(str(arg) for arg in args)])


def test_cli_mines_refuses_to_overwrite_and_reads_an_index(
    tmp_path: Path, corpus: Path, cli_inputs: tuple[Path, Path], searcher: odqa.Searcher
) -> None:
    queries, qrels = cli_inputs
    out = tmp_path / "train.jsonl"
    common = ("--queries", queries, "--qrels", qrels, "--out", out, "--ranks", "2-9")
    result = run_mine(corpus, *common, "--per-query", "3", "--seed", "7")
    assert result.exit_code == 0, result.output
    assert "3 queries, 4 examples, 12 negatives, 0 queries short of 3 negatives" in result.output
    assert "1 unjudged queries skipped" in result.output
    first = out.read_text()
    assert len(first.splitlines()) == 4

    refused = run_mine(corpus, *common)
    assert refused.exit_code == 2
    assert "already exists; pass --overwrite" in refused.output

    again = run_mine(corpus, *common, "--per-query", "3", "--seed", "7", "--miner", searcher.path)
    assert again.exit_code == 2
    replaced = run_mine(
        corpus, *common, "--per-query", "3", "--seed", "7", "--miner", searcher.path, "--overwrite"
    )
    assert replaced.exit_code == 0, replaced.output
    assert out.read_text() == first


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--ranks", "10"), "--ranks must be FIRST-LAST"),
        (("--ranks", "9-3"), "ranks must satisfy"),
        (("--miner", "nowhere"), "--miner must be bm25, dense or an index directory"),
    ],
)
def test_cli_bad_options(
    tmp_path: Path,
    corpus: Path,
    cli_inputs: tuple[Path, Path],
    option: tuple[str, str],
    message: str,
) -> None:
    queries, qrels = cli_inputs
    result = run_mine(
        corpus, "--queries", queries, "--qrels", qrels, "--out", tmp_path / "o.jsonl", *option
    )
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_cli_help_has_an_example() -> None:
    result = run_mine("--help")
    assert result.exit_code == 0
    assert "Example: odqa mine" in result.output
