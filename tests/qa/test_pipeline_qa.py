"""Retrieve then read: the Pipeline, QA evaluation, and the QA commands (ask, eval-qa, train)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import odqa
from helpers import save_hand_set_reader, write_squad
from odqa.cli import app
from odqa.cli.options import parse_articles
from odqa.corpus.records import Query
from odqa.errors import OdqaError
from odqa.evaluate.answering import evaluate_qa
from odqa.qa.pipeline import Pipeline, evidence_from_hit
from odqa.read.answer import Answer, Evidence
from odqa.read.extractive import ExtractiveReader

runner = CliRunner()


def qa_app() -> typer.Typer:
    return app


def odqa_cli(*args: object):
    return runner.invoke(qa_app(), [str(arg) for arg in args])


class EchoReader:
    """Answers "vitamin C" and records the passages it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Evidence]]] = []

    def read(self, question: str, passages: Sequence[Evidence]) -> Answer:
        self.calls.append((question, list(passages)))
        return Answer("vitamin C", 1.0, "span", tuple(passages[:1]))


@pytest.fixture(scope="module")
def hand_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_hand_set_reader(tmp_path_factory.mktemp("hand-reader"))


@pytest.fixture()
def index_dir(tmp_path: Path, small_corpus: Path) -> Path:
    return odqa.build_index(small_corpus, tmp_path / "idx", retrievers=["bm25"], language="en")


def test_ask_reads_the_retrieved_passages(index_dir: Path, hand_model: Path) -> None:
    searcher = odqa.Searcher(index_dir)
    pipeline = Pipeline(searcher, ExtractiveReader(hand_model, device="cpu"))
    answer = pipeline.ask("what causes scurvy?", k=3)
    assert (answer.kind, answer.text) == ("span", "vitamin C")
    [evidence] = answer.evidence
    assert (evidence.doc_id, evidence.passage_id, evidence.title) == ("d1", "d1#0", "Scurvy")
    assert evidence.text[evidence.start : evidence.end] == "vitamin C"
    hit = searcher.search(["what causes scurvy?"], 1, retriever="bm25")[0][0]
    assert evidence.retrieval_score == pytest.approx(hit.score)
    assert evidence_from_hit(hit) == Evidence("d1", "d1#0", hit.passage.text, "Scurvy", hit.score)


def test_pipeline_passes_k_hits_and_the_retriever(index_dir: Path) -> None:
    reader = EchoReader()
    pipeline = Pipeline(odqa.Searcher(index_dir), reader, retriever="bm25")
    answers = pipeline.ask_many(["lack of vitamin C", "too little vitamin D"], k=2)
    assert [answer.evidence[0].doc_id for answer in answers] == ["d1", "d2"]
    assert [len(passages) for _, passages in reader.calls] == [2, 2]
    assert reader.calls[1][1][0].text == "Rickets comes from too little vitamin D."
    with pytest.raises(OdqaError, match="empty question"):
        pipeline.ask(" ")
    with pytest.raises(OdqaError, match="no 'dense' retriever"):
        Pipeline(odqa.Searcher(index_dir), reader, retriever="dense").ask("scurvy")


def test_evaluate_qa_by_hand(index_dir: Path) -> None:
    questions = [
        Query("q1", "lack of vitamin C", ("vitamin C",)),
        Query("q2", "vitamin deficiency", ("thiamine",)),
        Query("q3", "penicillin mould", ("penicillin",)),
        Query("q4", "no gold answer", ()),
    ]
    reader = EchoReader()
    metrics = evaluate_qa(odqa.Searcher(index_dir), reader, questions, ks=(2, 1))
    # the reader always says "vitamin C": right for q1 only; q1 and q2 find their answer at
    # rank 1 (d1, d3), q3 has no hit at all
    assert metrics == {
        "em@1": pytest.approx(100 / 3),
        "f1@1": pytest.approx(100 / 3),
        "retrieval_accuracy@1": pytest.approx(200 / 3),
        "em@2": pytest.approx(100 / 3),
        "f1@2": pytest.approx(100 / 3),
        "retrieval_accuracy@2": pytest.approx(200 / 3),
        "questions": 3,
        "questions_without_answers": 1,
    }
    # each question is read at each k, once when it has fewer hits than k
    assert [len(passages) for _, passages in reader.calls] == [1, 2, 1, 2, 0]
    with pytest.raises(OdqaError, match="has gold answers"):
        evaluate_qa(odqa.Searcher(index_dir), reader, questions[3:])


@pytest.mark.parametrize("command", ["ask", "eval-qa", "train reader"])
def test_commands_have_help_with_an_example(command: str) -> None:
    result = odqa_cli(*command.split(), "--help")
    assert result.exit_code == 0
    assert "Example" in result.output


def test_ask_without_a_reader_answers_with_the_best_sentence(index_dir: Path) -> None:
    result = odqa_cli("ask", index_dir, "what causes scurvy?", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["kind"], payload["text"]) == (
        "sentence",
        "Scurvy is caused by a lack of vitamin C.",
    )
    source = payload["evidence"][0]
    assert (
        source["doc_id"] == "d1"
        and source["text"][source["start"] : source["end"]] == payload["text"]
    )
    assert "no --reader-model" in result.stderr and "odqa train reader" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = odqa_cli("ask", index_dir, "what causes rickets?")
    assert "answer (best sentence): Rickets comes from too little vitamin D." in result.stdout
    result = odqa_cli("ask", index_dir, "what causes scurvy?", "--reader", "extractive")
    assert result.exit_code == 2
    assert "--reader-model is required" in result.output and "ships none" in result.output


def test_ask_command(index_dir: Path, hand_model: Path) -> None:
    args = ("ask", index_dir, "what causes scurvy?", "--reader-model", hand_model)
    result = odqa_cli(*args, "--top-k", "2")
    assert result.exit_code == 0, result.output
    assert "answer: vitamin C" in result.output
    assert "source: d1#0 — Scurvy" in result.output
    result = odqa_cli(*args, "--json")
    payload = json.loads(result.output)
    assert (payload["text"], payload["kind"]) == ("vitamin C", "span")
    assert payload["evidence"][0]["doc_id"] == "d1"
    result = odqa_cli(*args, "--no-answer-threshold", "0.999")
    assert result.exit_code == 0 and "no answer" in result.output
    assert odqa_cli(*args, "--reader", "generative").exit_code == 2


def test_eval_qa_command(index_dir: Path, hand_model: Path, tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    lines = [
        {"id": "q1", "text": "what causes scurvy?", "answers": ["vitamin C"]},
        {"id": "q2", "text": "thiamine deficiency", "answers": ["thiamine"]},
    ]
    questions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    args = ("eval-qa", index_dir, "--questions", questions, "--reader-model", hand_model)
    result = odqa_cli(*args, "--top-k", "1,3", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["em@1"] == 50.0 and metrics["retrieval_accuracy@1"] == 100.0
    assert metrics["questions"] == 2
    result = odqa_cli(*args, "--top-k", "1", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert "100.00" in result.output and "of 1 questions" in result.output


def test_train_reader_command(tmp_path: Path, tiny_model: Path) -> None:
    squad = write_squad(tmp_path / "toy.json")
    out = tmp_path / "reader"
    args = ("train", "reader", squad, "--out", out, "--base", tiny_model, "--max-length", "64")
    result = odqa_cli(*args, "--epochs", "1", "--articles", "0-1", "--batch-size", "4")
    assert result.exit_code == 0, result.output
    assert "trained on 2 questions" in result.output
    assert (out / "model.safetensors").is_file()
    again = odqa_cli(*args)
    assert again.exit_code == 2 and "already exists" in again.output
    assert odqa_cli(*args, "--articles", "x-3", "--overwrite").exit_code == 2
    quick = (*args, "--epochs", "1", "--max-questions", "2", "--answer-windows-only")
    result = odqa_cli(*quick, "--overwrite", "--reuse")
    assert result.exit_code == 0 and "trained on 2 questions" in result.output
    result = odqa_cli(*quick, "--reuse")  # no --overwrite needed to keep it
    assert result.exit_code == 0 and "kept, trained on the same data" in result.output


def test_parse_articles() -> None:
    assert parse_articles("0-37") == range(0, 38)
    assert parse_articles("5") == range(5, 6)
    assert parse_articles(None) is None
    with pytest.raises(OdqaError):
        parse_articles("4-2")
