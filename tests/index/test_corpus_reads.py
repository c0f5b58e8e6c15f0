"""A build reads its corpus once for the main pass: the first batch (which chooses the dense
model) is the main pass's own; a progress bar adds a fast count of lines; ColBERT, which
trains on a sample of documents drawn before compressing any, reads it twice more."""

from __future__ import annotations

from pathlib import Path

import pytest

import odqa
import odqa.corpus.readers as readers
import odqa.corpus.textio as textio
from odqa.corpus import ChunkSpec
from odqa.index.settings import ColBERTSettings


@pytest.fixture()
def opens(monkeypatch: pytest.MonkeyPatch, small_corpus: Path) -> list[str]:
    """Every opening of the corpus file, by whom (reading it, or counting its lines)."""
    seen: list[str] = []
    real = textio.open_binary

    def counted(path, *args, **kwargs):
        if Path(path) == small_corpus:
            seen.append("read")
        return real(path, *args, **kwargs)

    def counted_count(path, *args, **kwargs):
        if Path(path) == small_corpus:
            seen.append("count")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(textio, "open_binary", counted)
    monkeypatch.setattr(readers, "open_binary", counted_count)
    return seen


@pytest.mark.parametrize(
    ("retrievers", "progress", "expected"),
    [
        (["bm25", "dense"], False, ["read"]),
        (["bm25", "dense"], True, ["read", "count"]),
        (["bm25", "dense", "colbert"], False, ["read", "read", "read"]),
    ],
)
def test_a_build_opens_its_corpus_once_for_the_main_pass(
    opens: list[str],
    small_corpus: Path,
    tiny_model: Path,
    tmp_path: Path,
    retrievers: list[str],
    progress: bool,
    expected: list[str],
) -> None:
    odqa.build_index(
        small_corpus,
        tmp_path / "idx",
        retrievers=retrievers,
        model=str(tiny_model),
        chunk=ChunkSpec(tokens=32, overlap=8),
        colbert=ColBERTSettings(sample=3),
        show_progress=progress,
    )
    assert opens == expected
