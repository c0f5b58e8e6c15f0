"""``--plot`` of eval, eval-qa and tune: PNG files, the metrics they draw, the extra's error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import save_hand_set_reader, write_squad
from odqa.cli import app

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def odqa(*args: object):
    return runner.invoke(app, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def squad_index(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("plots")
    squad = write_squad(folder / "squad.json")
    index = folder / "idx"
    result = odqa("index", squad, index, "--model", tiny_model, "--language", "en")
    assert result.exit_code == 0, result.output
    return squad, index


def test_eval_plot_draws_each_retriever_against_k(
    squad_index: tuple[Path, Path], tmp_path: Path
) -> None:
    squad, index = squad_index
    out = tmp_path / "k.png"
    result = odqa("eval", index, "--queries", squad, "--plot", out, "--json")
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(PNG)
    plotted = json.loads(result.output)["plotted"]
    assert list(plotted) == ["bm25", "dense", "hybrid"]
    recall = plotted["bm25"]["recall"]
    assert list(recall) == ["1", "3", "5", "10", "20", "50", "100"]
    assert recall["100"] == 1.0 and recall["1"] <= recall["3"] <= recall["100"]
    single = odqa("eval", index, "--queries", squad, "--plot", out, "-r", "bm25", "--json")
    assert list(json.loads(single.output)["plotted"]) == ["bm25"]


def test_eval_qa_plot_draws_em_f1_and_accuracy(
    squad_index: tuple[Path, Path], tmp_path: Path
) -> None:
    squad, index = squad_index
    reader = save_hand_set_reader(tmp_path / "reader")
    out = tmp_path / "qa.png"
    result = odqa(
        "eval-qa", index, "--questions", squad, "--reader-model", reader, "--top-k", "1,3",
        "--plot", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(PNG)
    assert "\nbm25:\n" in result.output and "\ndense:\n" in result.output
    assert f"wrote {out} (bm25, dense, hybrid)" in result.output


def test_tune_plot_draws_the_history(squad_index: tuple[Path, Path], tmp_path: Path) -> None:
    squad, index = squad_index
    out = tmp_path / "history.png"
    result = odqa(
        "tune", index, "--queries", squad, "--trials", "3", "--out", tmp_path / "best.json",
        "--plot", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(PNG)


def test_missing_matplotlib_names_the_extra(
    squad_index: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    squad, index = squad_index
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an absent package looks like
    result = odqa("eval", index, "--queries", squad, "--plot", tmp_path / "k.png")
    assert result.exit_code == 2
    assert "odqa[plot]" in result.output and not (tmp_path / "k.png").exists()
