"""The build plan: what a whole build will need, extrapolated from its first batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import odqa.index.plan as plan
from odqa.index.kind import Footprint


class Fixed:
    """A builder whose footprint grows with the passages: 100 bytes on disk, 10 in memory."""

    def footprint(self, passages: int) -> Footprint:
        return Footprint(disk=100 * passages, memory=10 * passages)


def test_the_plan_scales_the_first_batch_to_the_corpus(tmp_path: Path) -> None:
    first = plan.BuildSoFar(documents=100, passages=150, stored_bytes=50_000)
    line, warnings = plan.plan_line(1_000_000, first, {"fixed": Fixed()}, tmp_path / "idx")
    assert line.startswith("about 1,000,000 documents, 1,500,000 passages")
    disk = 500_000_000 + 32 * 1_500_000 + 100 * 1_500_000
    assert f"{disk / plan.GIB:.1f} GiB of disk" in line
    assert "fixed 0.1 GiB disk / 14 MiB RAM" in line
    assert warnings == []
    assert "pace" not in line  # no time measured, none said


def test_the_plan_says_how_long_the_rest_takes_at_the_current_pace(tmp_path: Path) -> None:
    first = plan.BuildSoFar(documents=100, passages=150, stored_bytes=50_000, seconds=2.0)
    line, _ = plan.plan_line(1_000_000, first, {"fixed": Fixed()}, tmp_path / "idx")
    assert line.endswith("; about 5 h 33 min more at the current pace")  # 19,998 s
    whole = plan.BuildSoFar(documents=100, passages=150, stored_bytes=50_000, seconds=2.0)
    assert plan.plan_line(100, whole, {}, tmp_path / "idx")[0].endswith(
        "about 0 s more at the current pace"
    )
    assert [plan.duration(s) for s in (40, 719, 3600)] == ["40 s", "12 min", "1 h 00 min"]


def test_the_pace_is_the_last_batch_s_not_the_first_s(tmp_path: Path) -> None:
    """The first batch pays the warm-up: a 1M-passage ColBERT build's plan said 61 min at
    the first batch's pace, where the second batch's pace said 40."""
    so_far = plan.BuildSoFar(
        documents=200, passages=300, stored_bytes=100_000, seconds=1.0, timed_documents=100
    )
    line, _ = plan.plan_line(1_000_000, so_far, {"fixed": Fixed()}, tmp_path / "idx")
    assert line.startswith("about 1,000,000 documents, 1,500,000 passages")
    assert line.endswith("; about 2 h 47 min more at the current pace")  # 9,998 s


def test_a_build_too_big_for_the_disk_or_memory_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan, "free_disk", lambda path: 1 << 20)
    monkeypatch.setattr(plan, "available_memory", lambda: 1 << 20)
    first = plan.BuildSoFar(documents=10, passages=10, stored_bytes=10_000)
    _, warnings = plan.plan_line(1_000_000, first, {"fixed": Fixed()}, tmp_path / "a" / "idx")
    assert len(warnings) == 2
    assert "free some space" in warnings[0] and str(tmp_path) in warnings[0]
    assert "may be killed" in warnings[1]


def test_odqa_index_says_its_plan_once_its_first_batches_are_in(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from odqa.cli import app

    corpus = tmp_path / "c.jsonl"
    rows = [{"id": f"d{i}", "text": f"word{i} shared text"} for i in range(1200)]
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["index", str(corpus), str(tmp_path / "idx"), "--retrievers", "bm25"]
    )
    assert result.exit_code == 0, result.output
    assert "about 1,200 documents, 1,200 passages: needs about" in result.stderr
    assert "more at the current pace" in result.stderr
