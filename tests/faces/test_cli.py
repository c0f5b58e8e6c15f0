"""The ``odqa`` command end to end: exit codes, messages, JSON shapes."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from odqa.cli import app

runner = CliRunner()


def odqa(*args: str):
    return runner.invoke(app, [str(arg) for arg in args])


@pytest.fixture()
def index_dir(tmp_path: Path, small_corpus: Path, tiny_model: Path) -> Path:
    target = tmp_path / "idx"
    result = odqa(
        "index",
        small_corpus,
        target,
        "--model",
        tiny_model,
        "--language",
        "en",
        "--chunk-tokens",
        "32",
        "--chunk-overlap",
        "8",
    )
    assert result.exit_code == 0, result.output
    assert "documents: 6" in result.output
    return target


def leaf_commands(command=None, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every leaf command of the app, as its words: ``train colbert``, ``search``, …"""
    command = command or typer.main.get_command(app)
    if not hasattr(command, "commands"):
        return [" ".join(prefix)]
    return [
        name
        for word, sub in command.commands.items()
        for name in leaf_commands(sub, (*prefix, word))
    ]


@pytest.mark.parametrize("command", leaf_commands())
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = odqa(*command.split(), "--help")
    assert result.exit_code == 0
    assert "Example" in result.output


def test_search_json_and_text(index_dir: Path) -> None:
    result = odqa(
        "search", index_dir, "lack of vitamin C", "-k", "2", "--retriever", "bm25", "--json"
    )
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.output.splitlines()]  # JSON Lines
    assert len(hits) == 2 and hits[0]["doc_id"] == "d1" and hits[0]["rank"] == 1
    assert set(hits[0]) == {
        "rank",
        "score",
        "doc_id",
        "passage_id",
        "title",
        "text",
        "start",
        "end",
    }
    text = odqa("search", index_dir, "lack of vitamin C", "-k", "1")
    assert text.exit_code == 0 and "d1 — Scurvy" in text.output


def test_info_describes_the_index(index_dir: Path) -> None:
    result = odqa("info", index_dir)
    assert result.exit_code == 0
    assert "documents: 6" in result.output and "retriever dense" in result.output


def test_eval_json_has_exactly_the_promised_keys(index_dir: Path, tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        '{"id": "q1", "text": "vitamin C scurvy"}\n{"id": "q2", "text": "thiamine"}\n'
    )
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n")
    run_file = tmp_path / "bm25.trec"
    result = odqa(
        "eval",
        index_dir,
        "--queries",
        queries,
        "--qrels",
        qrels,
        "--retriever",
        "bm25",
        "--json",
        "--run-out",
        run_file,
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert {"ndcg@10", "recall@10", "recall@100", "mrr@10"} <= set(metrics)
    assert not {k for k in metrics if "@" in k} - {"ndcg@10", "recall@10", "recall@100", "mrr@10"}
    assert metrics["mrr@10"] == pytest.approx(1.0) and metrics["queries"] == 2
    # the written run evaluates to the same figures without the index
    again = odqa("eval", "--run", run_file, "--qrels", qrels, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["ndcg@10"] == pytest.approx(metrics["ndcg@10"])
    fused = tmp_path / "fused.trec"
    result = odqa("fuse", run_file, run_file, "--out", fused, "--method", "rrf")
    assert result.exit_code == 0 and fused.read_text().startswith("q1 Q0 d1 1 ")


def test_eval_with_queries_that_match_no_qrels(index_dir: Path, tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "text": "vitamin"}\n')
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nzz\td1\t1\n")
    result = odqa("eval", index_dir, "--queries", queries, "--qrels", qrels)
    assert result.exit_code == 2
    assert "q.jsonl: field 'id': none of its 1 query ids appears in" in result.output


def test_index_errors_exit_2_and_name_file_line_field(tmp_path: Path, tiny_model: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,body\n1,hello\n")
    result = odqa("index", bad, tmp_path / "idx", "--model", tiny_model)
    assert result.exit_code == 2
    assert "bad.csv:1: field 'text'" in result.output
    assert not (tmp_path / "idx").exists()


def test_newer_index_format_is_refused(index_dir: Path) -> None:
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest["format_version"] = 99
    (index_dir / "manifest.json").write_text(json.dumps(manifest))
    result = odqa("search", index_dir, "x")
    assert result.exit_code == 2 and "format_version' is 99" in result.output


def test_existing_index_needs_overwrite(
    index_dir: Path, small_corpus: Path, tiny_model: Path
) -> None:
    result = odqa("index", small_corpus, index_dir, "--model", tiny_model)
    assert result.exit_code == 2 and "--overwrite" in result.output


# --- the package's shape -----------------------------------------------------------------------

SEARCHING = ("search", "eval", "ask", "eval-qa", "serve")
SHARED_FLAGS = (
    *("--device", "--precision", "--fusion", "--weights", "--exhaustive", "--ncells"),
    *("--ndocs", "--centroid-score-threshold", "--reader", "--reader-model", "--api-base"),
    *("--api-model", "--api-key-env", "--no-answer-threshold", "--json"),
)


def leaf_commands(command=None, prefix: tuple[str, ...] = ()) -> dict[str, object]:
    import typer.main

    command = command or typer.main.get_command(app)
    if not hasattr(command, "commands"):
        return {" ".join(prefix): command}
    found: dict[str, object] = {}
    for word, sub in command.commands.items():
        found.update(leaf_commands(sub, (*prefix, word)))
    return found


def test_searching_commands_take_the_same_retrieval_options() -> None:
    from odqa.cli.options import SEARCH_PARAMETERS

    commands = leaf_commands()
    shapes = {}
    for name in SEARCHING:
        params = {param.name: param for param in commands[name].params}
        assert set(SEARCH_PARAMETERS) <= set(params), name
        shapes[name] = [
            (tuple(params[key].opts), params[key].help, params[key].default)
            for key in SEARCH_PARAMETERS
        ]
    assert all(shape == shapes["search"] for shape in shapes.values())


def test_a_shared_option_means_the_same_everywhere() -> None:
    helps: dict[str, set[str]] = {}
    for command in leaf_commands().values():
        for param in command.params:
            for flag in set(param.opts) & set(SHARED_FLAGS):
                helps.setdefault(flag, set()).add(param.help)
    assert {flag: len(texts) for flag, texts in helps.items() if len(texts) > 1} == {}
    assert "bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere" in helps["--precision"].pop()


def test_command_modules_import_options_and_errors_not_the_cli() -> None:
    import ast

    import odqa.cli

    folder = Path(odqa.cli.__file__).parent
    for path in folder.glob("*.py"):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            cli = [name for name in names if name == "odqa.cli" or name.startswith("odqa.cli.")]
            allowed = ("odqa.cli.options", "odqa.cli.errors")
            assert all(name.startswith(allowed) for name in cli), (path.name, cli)


def test_serve_passes_the_search_options_and_k(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = []
    monkeypatch.setattr("uvicorn.run", lambda application, **settings: served.append(application))
    result = odqa("serve", index_dir, "-r", "bm25", "--fusion", "rrf", "--weights", "1,2", "-k", 2)
    assert result.exit_code == 0, result.output
    [application] = served
    service = application.state.service
    assert service.searcher.default_retriever == "bm25" and application.state.k == 2
    assert (service.options.fusion, service.options.weights) == ("rrf", (1.0, 2.0))


def test_search_takes_the_hybrid_options(index_dir: Path) -> None:
    ranked = {}
    for fusion in ("zscore", "rrf"):
        result = odqa("search", index_dir, "vitamin", "--fusion", fusion, "--json", "-k", "3")
        assert result.exit_code == 0, result.output
        ranked[fusion] = [json.loads(line)["score"] for line in result.output.splitlines()]
    assert ranked["rrf"] != ranked["zscore"]  # the option reached the hybrid
    assert all(0 < score < 0.05 for score in ranked["rrf"])  # RRF's 1/(60 + rank) sums


def test_every_json_output_is_json_lines(index_dir: Path, tmp_path: Path) -> None:
    """One rule for machine output: one compact JSON value a line (a hit a line for search)."""
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "q1", "text": "vitamin C scurvy"}\n')
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\t0\td1\t1\n")
    outputs = {
        "search": odqa("search", index_dir, "vitamin", "-k", "3", "--json"),
        "eval": odqa("eval", index_dir, "--queries", queries, "--qrels", qrels, "--json"),
        "info": odqa("info", index_dir, "--json"),
        "info --check": odqa("info", index_dir, "--check", "--json"),
    }
    for name, result in outputs.items():
        assert result.exit_code == 0, (name, result.output)
        lines = result.stdout.splitlines()
        assert lines and all(isinstance(json.loads(line), dict) for line in lines), name
    assert len(outputs["search"].stdout.splitlines()) == 3
    assert all(len(outputs[name].stdout.splitlines()) == 1 for name in ("eval", "info"))


def test_a_note_said_while_a_progress_bar_runs_gets_a_line_of_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The plan's disk warning came out glued to the end of the bar's line."""
    from tqdm import tqdm

    from odqa.cli.errors import NotesAboveBars

    logger = logging.getLogger("odqa.test-notes")
    handler = NotesAboveBars()
    logger.addHandler(handler)
    try:
        with tqdm(total=10, desc="indexing", file=sys.stderr) as bar:
            bar.update(1)
            logger.warning("warning: the index will need about 0.5 GiB")
        logger.warning("note: after the bar")
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    before = err[: err.index("warning: the index")]
    assert before.endswith("\r")  # the bar's line was cleared first
    assert "\nnote: after the bar\n" in err or err.startswith("note: after the bar\n")
