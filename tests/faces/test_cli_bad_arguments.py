"""Every command, given bad arguments, ends in a clean error: a message and a non-zero exit
status, never a traceback (the error a user caused is an OdqaError, or a usage error)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

import odqa
from helpers import save_hand_set_reader
from odqa.cli import app

runner = CliRunner()

MINE = ["{corpus}", "--queries", "{queries}", "--qrels", "{qrels}", "--out", "{out}"]
GENERATIVE = ["{index}", "scurvy?", "--reader", "generative"]
TUNING = ["{index}", "--queries", "{queries}", "--qrels", "{qrels}", "--out", "{out}"]
"""A tune command line that works; the cases below add what breaks it."""
NOT_UTF8 = os.fsdecode(b"source=pub\xffmed")
"""A --where term with a byte that is not UTF-8, as Python hands it over from argv."""

CASES: dict[str, list[list[str]]] = {
    "index": [
        ["{missing}", "{out}"],
        ["{corpus}", "{out}", "--chunk-tokens", "2"],
        ["{corpus}", "{out}", "--chunk-overlap", "300"],
        ["{corpus}", "{out}", "--retrievers", "tfidf"],
        ["{corpus}", "{out}", "--retrievers", "bm25", "--language", "xx"],
        ["{corpus}", "{out}", "--k1", "high"],
        ["{corpus}", "{index}", "--retrievers", "bm25"],  # exists, no --overwrite
        ["{corpus}", "{out}", "--embeddings-from", "{plain}"],
        ["{corpus}", "{out}", "--embeddings-from", "{missing}"],
    ],
    "encode": [
        ["{missing}", "{out}"],
        ["{corpus}", "{out}", "--retriever", "bm25"],
        ["{corpus}", "{out}", "--dtype", "int8"],
        ["{corpus}", "{out}", "--shard-passages", "0"],
        ["{corpus}", "{out}", "--chunk-tokens", "2"],
        ["{corpus}", "{index}"],  # exists, no --overwrite
    ],
    "add": [
        ["{missing}", "{corpus}"],
        ["{plain}", "{corpus}"],
        ["{index}", "{missing}"],
        ["{index}", "{corpus}"],  # its ids are in the index already
        ["{index}", "{corpus}", "--format", "parquet"],
    ],
    "delete": [
        ["{missing}", "d1"],
        ["{index}"],  # no id
        ["{index}", "--ids", "{missing}"],
        ["{index}", "nobody"],  # nothing deleted
    ],
    "compact": [["{missing}"], ["{plain}"], ["{corpus}"]],
    "search": [
        ["{missing}", "scurvy"],
        ["{plain}", "scurvy"],
        ["{corpus}", "scurvy"],
        ["{index}", "scurvy", "--retriever", "colbert"],
        ["{index}", "scurvy", "--fusion", "x"],
        ["{index}", "scurvy", "--weights", "a,b"],
        ["{index}", "scurvy", "--weights", "-1"],
        ["{index}", "scurvy", "-k", "0"],
        ["{index}", "scurvy", "-k", "ten"],
        ["{index}", "scurvy", "--unit", "sentence"],
        ["{index}", "scurvy", "--settings", "{corpus}"],  # JSONL, not one JSON object
        ["{index}", "scurvy", "--settings", "{missing}"],
        ["{index}", "scurvy", "--where", NOT_UTF8],
    ],
    "eval": [
        [],
        ["{missing}", "--queries", "{queries}", "--qrels", "{qrels}"],
        ["{plain}", "--queries", "{queries}", "--qrels", "{qrels}"],
        ["{index}", "--queries", "{missing}", "--qrels", "{qrels}"],
        ["{index}", "--queries", "{queries}", "--qrels", "{qrels}", "--accuracy-at", "x"],
        ["{index}", "--queries", "{queries}", "--qrels", "{qrels}", "--fusion", "x"],
        ["{index}", "--queries", "{queries}", "--qrels", "{qrels}", "-r", "dense"],
        ["--run", "{missing}", "--qrels", "{qrels}"],
        ["--run", "{corpus}", "--qrels", "{qrels}"],
        ["{index}", "--queries", "{queries}", "--qrels", "{qrels}", "--where", NOT_UTF8],
        ["{index}", "--queries", "{queries}", "--qrels", "{huge_grades}"],
        ["--run", "{run}", "--qrels", "{huge_grades}"],
    ],
    "info": [["{missing}"], ["{plain}"], ["{corpus}"]],
    "fuse": [
        ["{run}", "{run}", "--out", "{out}", "--method", "x"],
        ["{missing}", "{missing}", "--out", "{out}", "--method", "x"],
        ["{run}", "{run}", "--out", "{out}", "--weights", "a,b"],
        ["{run}", "{run}", "--out", "{out}", "--weights", "1,2,3"],
        ["{run}", "{missing}", "--out", "{out}"],
        ["{run}", "{run}", "--out", "{out}", "-k", "0"],
        ["{run}", "{run}"],
        ["{run}", "--out", "{out}"],
    ],
    "fetch": [["{missing}", "--out", "{out}"], ["{plain}", "--out", "{out}"]],
    "mine": [
        ["{missing}", "--queries", "{queries}", "--qrels", "{qrels}", "--out", "{out}"],
        ["{corpus}", "--queries", "{missing}", "--qrels", "{qrels}", "--out", "{out}"],
        [*MINE, "--ranks", "ten"],
        [*MINE, "--miner", "{plain}"],
    ],
    "ask": [
        ["{missing}", "scurvy?", "--reader-model", "{reader}"],
        ["{plain}", "scurvy?", "--reader-model", "{reader}"],
        ["{index}", "scurvy?", "--reader", "extractive"],
        ["{index}", "scurvy?", "--no-answer-threshold", "0.5"],
        ["{index}", "scurvy?", "--reader", "abstractive", "--reader-model", "{reader}"],
        ["{index}", "scurvy?", "--reader-model", "{plain}"],
        GENERATIVE,
        [*GENERATIVE, "--api-base", "localhost", "--api-model", "m"],
        ["{index}", "scurvy?", "--reader", "yesno", "--no-answer-threshold", "0.5"],
        ["{index}", "scurvy?", "--reader-model", "{reader}", "--retriever", "dense"],
        ["{index}", "scurvy?", "--reader-model", "{reader}", "--fusion", "x"],
        ["{index}", "scurvy?", "--reader-model", "{reader}", "--weights", "x"],
        ["{index}", "scurvy?", "--reader-model", "{reader}", "--top-k", "many"],
        ["{index}", "scurvy?", "--reader-model", "{reader}", "-k", "0"],
        ["{index}", " ", "--reader-model", "{reader}"],
    ],
    "eval-qa": [
        ["{missing}", "--questions", "{questions}", "--reader-model", "{reader}"],
        ["{index}", "--questions", "{missing}", "--reader-model", "{reader}"],
        ["{index}", "--questions", "{queries}", "--reader-model", "{reader}"],
        ["{index}", "--questions", "{questions}", "--reader", "extractive"],
        ["{index}", "--questions", "{questions}", "--reader-model", "{reader}", "-k", "x"],
        ["{index}", "--questions", "{questions}", "--reader-model", "{reader}", "-k", "0"],
        ["{index}", "--questions", "{questions}", "--reader-model", "{reader}", "--fusion", "x"],
        ["{index}", "--questions", "{questions}", "--reader-model", "{reader}", "-r", "dense"],
    ],
    "serve": [
        ["{missing}"],
        ["{plain}"],
        ["{index}", "-k", "0"],
        ["{index}", "--max-k", "0"],
        ["{index}", "--retriever", "dense"],
        ["{index}", "--fusion", "x"],
        ["{index}", "--reader", "generative"],
        ["{index}", "--port", "http"],
    ],
    "tune": [
        ["{index}", "--out", "{out}"],  # neither --queries nor --questions
        ["{missing}", "--queries", "{queries}", "--qrels", "{qrels}", "--out", "{out}"],
        ["{index}", "--queries", "{queries}", "--qrels", "{run}", "--out", "{out}"],
        [*TUNING, "--trials", "0"],
        [*TUNING, "--objective", "f1"],
        ["{index}", "--questions", "{questions}", "--out", "{out}"],  # no reader
        [
            "{index}",
            "--questions",
            "{questions}",
            "--reader-model",
            "{reader}",
            "--out",
            "{out}",
            "--top-k",
            "0,2",
        ],
        [*TUNING, "--eval-queries", "{queries}"],
        ["{index}", "--queries", "{queries}", "--qrels", "{huge_grades}", "--out", "{out}"],
    ],
    "train colbert": [
        ["{missing}", "--out", "{out}"],
        ["{corpus}", "--out", "{out}", "--articles", "x-3"],
        ["{corpus}", "--out", "{out}", "--eval-corpus", "{corpus}"],
        ["{corpus}", "--out", "{out}", "--epochs", "many"],
    ],
    "train dense": [
        ["{missing}", "--out", "{out}"],
        ["{corpus}", "--out", "{out}", "--loss", "hinge"],
        ["{corpus}", "--out", "{out}", "--batch-size", "0"],
    ],
    "train reader": [
        ["{missing}", "--out", "{out}"],
        ["{corpus}", "--out", "{out}"],
        ["{missing}", "--out", "{out}", "--articles", "9-2"],
    ],
    "train yesno": [
        ["{missing}", "--out", "{out}"],
        ["{corpus}", "--out", "{out}"],
        ["{missing}", "--out", "{out}", "--class-weights", "heavy"],
    ],
}


def commands(command=None, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every leaf command of the app, as its words: ``train colbert``, ``search``, …"""
    command = command or typer.main.get_command(app)
    if not hasattr(command, "commands"):
        return [" ".join(prefix)]
    return [
        name for word, sub in command.commands.items() for name in commands(sub, (*prefix, word))
    ]


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bad-arguments")
    corpus = folder / "corpus.jsonl"
    docs = [
        {"id": "d1", "title": "Scurvy", "text": "Scurvy is caused by a lack of vitamin C."},
        {"id": "d2", "title": "Rickets", "text": "Rickets comes from too little vitamin D."},
    ]
    corpus.write_text("".join(json.dumps(doc) + "\n" for doc in docs), encoding="utf-8")
    queries = folder / "queries.jsonl"
    queries.write_text('{"id": "q1", "text": "vitamin C"}\n', encoding="utf-8")
    questions = folder / "questions.jsonl"
    questions.write_text('{"id": "q1", "text": "scurvy?", "answers": ["vitamin C"]}\n')
    qrels = folder / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8")
    huge_grades = folder / "huge.tsv"  # 2**62: trec_eval crashed on it
    huge_grades.write_text("q1\td1\t4611686018427387904\n", encoding="utf-8")
    run = folder / "run.trec"
    run.write_text("q1 Q0 d1 1 2.0 x\nq1 Q0 d2 2 1.0 x\n", encoding="utf-8")
    (folder / "plain").mkdir()
    index = odqa.build_index(corpus, folder / "index", retrievers=["bm25"], language="en")
    return {
        "corpus": str(corpus),
        "queries": str(queries),
        "questions": str(questions),
        "qrels": str(qrels),
        "huge_grades": str(huge_grades),
        "run": str(run),
        "plain": str(folder / "plain"),
        "reader": str(save_hand_set_reader(folder / "reader")),
        "index": str(index),
        "missing": str(folder / "missing"),
        "out": str(folder / "out"),
    }


def test_every_command_has_cases() -> None:
    assert sorted(CASES) == sorted(commands())


@pytest.mark.parametrize(
    ("command", "args"),
    [(command, args) for command, cases in CASES.items() for args in cases],
    ids=lambda value: value if isinstance(value, str) else " ".join(value),
)
def test_bad_arguments_end_in_a_clean_error(
    command: str, args: list[str], paths: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ODQA_API_KEY", raising=False)
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("serve started a server"))
    words = [*command.split(), *(arg.format(**paths) for arg in args)]
    result = runner.invoke(app, words)
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "error" in result.output.lower(), result.output
    assert not Path(paths["out"]).exists(), "a failed command left its output behind"
    said = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(said) == 1, result.stderr  # one line, usage errors included: no box, no usage
    assert not any(mark in result.stderr for mark in ("╭", "│", "Usage:")), result.stderr


@pytest.mark.parametrize(
    ("words", "wanted"),
    [
        (
            ["encode", "--retrievers", "dense", "c", "o"],
            "--retrievers (Possible options: --retriever)",
        ),
        (["serch", "x"], "No such command 'serch'. Did you mean 'search'"),
        (["search", "idx", "q", "-k", "ten"], "Invalid value for '-k' / '--k'"),
        (["search"], "Missing argument 'INDEX_DIR'"),
        (["train", "colbert", "t.jsonl", "--out", "o", "--epochs", "many"], "'--epochs'"),
    ],
)
def test_usage_errors_are_one_line_naming_the_option(words: list[str], wanted: str) -> None:
    result = runner.invoke(app, words)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: odqa"), result.stderr
    assert wanted.lower() in lines[0].lower() and "--help" in lines[0], lines[0]
