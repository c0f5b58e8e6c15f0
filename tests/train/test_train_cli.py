"""``odqa mine`` -> ``odqa train colbert|dense`` -> ``odqa index --colbert-model|--model``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from helpers import json_lines
from odqa.cli import app

runner = CliRunner()


def odqa(*args: object):
    return runner.invoke(app, [str(arg) for arg in args])


def write_judgements(folder: Path) -> tuple[Path, Path]:
    queries = folder / "queries.jsonl"
    rows = [
        ("q1", "what causes scurvy", "d1"),
        ("q2", "vitamin D deficiency disease", "d2"),
        ("q3", "thiamine deficiency", "d3"),
        ("q4", "what do kinases do to proteins", "d4"),
    ]
    queries.write_text("".join(json.dumps({"id": q, "text": t}) + "\n" for q, t, _ in rows))
    qrels = folder / "qrels.tsv"
    qrels.write_text("".join(f"{q}\t0\t{d}\t1\n" for q, _, d in rows))
    return queries, qrels


def test_mine_train_index_search(tmp_path: Path, small_corpus: Path, tiny_model: Path) -> None:
    queries, qrels = write_judgements(tmp_path)
    mined = tmp_path / "train.jsonl"
    result = odqa(
        "mine", small_corpus, "--queries", queries, "--qrels", qrels, "--out", mined,
        "--ranks", "2-6", "--per-query", "2", "--miner", "dense",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in mined.read_text().splitlines()]
    assert len(lines) == 4 and all(len(line["negatives"]) == 2 for line in lines)
    assert all(line["positive_id"] not in line["negative_ids"] for line in lines)

    model = tmp_path / "colbert"
    result = odqa(
        "train", "colbert", mined, "--out", model, "--base", tiny_model, "--dim", "8",
        "--epochs", "2", "--batch-size", "2", "--eval-corpus", small_corpus,
        "--eval-queries", queries, "--eval-qrels", qrels,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "4 steps" in result.output and "dev nDCG@10" in result.output
    assert "recorded query_maxlen 32, doc_maxlen 300 (documents trained at 180 tokens)" in (
        result.output
    )
    again = odqa("train", "colbert", mined, "--out", model, "--base", tiny_model)
    assert again.exit_code == 2 and "--overwrite" in again.output

    index = tmp_path / "idx"
    result = odqa(
        "index", small_corpus, index, "--retrievers", "colbert", "--colbert-model", model,
        "--chunk-tokens", "32", "--chunk-overlap", "8",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = odqa("search", index, "vitamin C", "--json", "-k", "3")
    assert result.exit_code == 0, result.output
    assert len(json_lines(result.output)) == 3


def test_train_dense_from_a_beir_folder(tmp_path: Path, small_corpus: Path, tiny_model: Path):
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(small_corpus.read_text())
    queries, qrels = write_judgements(tmp_path)
    (beir / "queries.jsonl").write_text(queries.read_text())
    (beir / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + qrels.read_text().replace("\t0\t", "\t")
    )
    out = tmp_path / "dense"
    result = odqa("train", "dense", beir, "--out", out, "--base", tiny_model, "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "2 steps" in result.output
    result = odqa("index", small_corpus, tmp_path / "idx", "--retrievers", "dense", "--model", out)
    assert result.exit_code == 0, result.output


def test_bad_training_data_names_file_line_and_field(tmp_path: Path, tiny_model: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"query": "q", "positive": "p"}\n{"query": "", "positive": "p"}\n')
    result = odqa("train", "dense", data, "--out", tmp_path / "out", "--base", tiny_model)
    assert result.exit_code == 2
    assert "bad.jsonl:2" in result.output and "query" in result.output
    assert not (tmp_path / "out").exists()


def test_ctrl_c_tells_how_to_resume(tmp_path: Path, monkeypatch) -> None:
    from odqa.train import run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "train_retriever", interrupted)
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"query": "q", "positive": "p"}\n')
    result = odqa("train", "dense", data, "--out", tmp_path / "out")
    assert result.exit_code == 130
    assert "run the same command again to resume" in result.output
    assert f"{tmp_path / 'out'}.partial" in result.output


def test_bad_settings_stop_before_any_work(tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"query": "q", "positive": "p"}\n')
    for args in (("--precision", "fp16"), ("--warmup", "2"), ("--batch-size", "0")):
        result = odqa("train", "dense", data, "--out", tmp_path / "out", *args)
        assert result.exit_code == 2 and "error:" in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_train_colbert_records_the_lengths_chosen(tmp_path: Path, tiny_model: Path) -> None:
    """The Stanford trap: --doc-maxlen 64 must not leave doc_maxlen 300 in artifact.metadata,
    where Stanford ColBERT and PyLate read the length they index at."""
    data = tmp_path / "train.jsonl"
    rows = [{"query": "what causes scurvy", "positive": "Lack of vitamin C.",
             "negatives": ["Kinases phosphorylate proteins."]}] * 2  # fmt: skip
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    model = tmp_path / "colbert"
    result = odqa(
        "train", "colbert", data, "--out", model, "--base", tiny_model, "--dim", "8",
        "--batch-size", "2", "--doc-maxlen", "64", "--query-maxlen", "16",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "recorded query_maxlen 16, doc_maxlen 64 (documents trained at 64 tokens)" in (
        result.output
    )
    metadata = json.loads((model / "artifact.metadata").read_text())
    assert (metadata["query_maxlen"], metadata["doc_maxlen"]) == (16, 64)
    summary = json.loads((model / "odqa_training.json").read_text())
    assert (summary["doc_maxlen"], summary["training_doc_maxlen"]) == (64, 64)

    result = odqa(
        "train", "colbert", data, "--out", model, "--base", tiny_model, "--dim", "8",
        "--batch-size", "2", "--doc-maxlen", "64", "--index-doc-maxlen", "256", "--overwrite",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "doc_maxlen 256 (documents trained at 64 tokens)" in result.output
    assert json.loads((model / "artifact.metadata").read_text())["doc_maxlen"] == 256

    result = odqa("train", "colbert", data, "--out", tmp_path / "x", "--doc-maxlen", "2")
    assert result.exit_code == 2 and "doc_maxlen must be at least 3 tokens, got 2" in result.output
