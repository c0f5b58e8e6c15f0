"""Rendering in one place: the CLI's JSON and the server's responses come from odqa.render, so
they agree — on NaN above all (JSON has none: a score that is not finite is null)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import odqa
from odqa import render
from odqa.cli import app
from odqa.read.answer import Answer, Evidence
from odqa.retrieve.searcher import Searcher
from odqa.server import create_app

runner = CliRunner()


class NaNReader:
    """Answers from the first passage with a score that is not a number (as endpoints do)."""

    def read(self, question: str, passages: Sequence[Evidence]) -> Answer:
        first = replace(passages[0], retrieval_score=math.nan)
        return Answer("vitamin C", math.nan, "generated", (replace(first, citation=1),))


@pytest.fixture()
def index(tmp_path: Path, small_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ODQA_API_KEY", raising=False)
    return odqa.build_index(small_corpus, tmp_path / "idx", retrievers=["bm25"], language="en")


@pytest.fixture()
def nan_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every search returns its hits with NaN scores."""
    search = Searcher.search

    def with_nan(self: Searcher, *args: object, **kwargs: object) -> list:
        results = search(self, *args, **kwargs)
        return [[replace(hit, score=math.nan) for hit in hits] for hits in results]

    monkeypatch.setattr(Searcher, "search", with_nan)


def test_not_finite_numbers_are_null() -> None:
    assert [render.finite(value) for value in (1.5, math.nan, math.inf, -math.inf, None)] == [
        1.5,
        None,
        None,
        None,
        None,
    ]
    item = Evidence("d1", "d1#0", "text", retrieval_score=math.nan)
    record = render.answer_dict(Answer("x", math.inf, "span", (item,)), "q?")
    assert list(record) == ["question", "text", "score", "kind", "evidence"]
    assert record["score"] is None and record["evidence"][0]["retrieval_score"] is None
    with pytest.raises(ValueError, match="JSON compliant"):
        render.to_json({"score": math.nan})  # the rule is enforced, not hoped for


def test_nan_is_null_in_the_cli_and_the_server_alike(
    index: Path, nan_scores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("odqa.read.factory.make_reader", lambda *args, **kwargs: NaNReader())
    searched = runner.invoke(app, ["search", str(index), "vitamin C", "-k", "2", "--json"])
    assert searched.exit_code == 0, searched.output
    cli_hits = [json.loads(line) for line in searched.output.splitlines()]
    asked = runner.invoke(app, ["ask", str(index), "vitamin C", "--reader-model", "x", "--json"])
    assert asked.exit_code == 0, asked.output
    cli_answer = json.loads(asked.stdout)  # one line, as every --json
    assert [hit["score"] for hit in cli_hits] == [None, None]
    assert cli_answer["score"] is None and cli_answer["evidence"][0]["retrieval_score"] is None

    with TestClient(create_app(index, reader=NaNReader())) as client:
        server_hits = client.post("/search", json={"query": "vitamin C", "k": 2}).json()["hits"]
        server_answer = client.post("/ask", json={"question": "vitamin C"}).json()
    assert server_hits == cli_hits  # one rendering: the same records, nulls included
    assert server_answer["score"] is None
    assert server_answer["evidence"][0] == cli_answer["evidence"][0]
    assert all(hit["score"] is None for hit in server_answer["passages"])


def test_text_lines(index: Path) -> None:
    with odqa.Searcher(index) as searcher:
        hits = searcher.search(["lack of vitamin C"], 1)[0]
    [head, text] = render.hit_lines(hits)
    assert head.startswith("  1. ") and head.endswith("d1 — Scurvy")
    assert text == "     Scurvy is caused by a lack of vitamin C."
    assert render.hit_lines([]) == ["no hits"]
    assert render.shorten("word " * 100, 20) == "word word word word…"
    cited = Answer("It is vitamin C [1].", 0.5, "generated", (evidence(hits[0], citation=1),))
    assert render.answer_lines(cited) == [
        "answer: It is vitamin C [1].",
        "score:  0.5000",
        "[1] d1 — Scurvy",
        "    Scurvy is caused by a lack of vitamin C.",
    ]


def evidence(hit, **changes) -> Evidence:
    from odqa.qa.pipeline import evidence_from_hit

    return replace(evidence_from_hit(hit), **changes)
