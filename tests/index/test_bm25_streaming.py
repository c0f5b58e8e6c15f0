"""The streamed BM25 build writes the matrix bm25s itself would, spilled to disk or not."""

from __future__ import annotations

import random

import bm25s
import numpy as np
import pytest

import odqa.index.bm25 as bm25
from odqa.index.analysis import EnglishAnalyzer

WORDS = [
    "cell",
    "cells",
    "protein",
    "proteins",
    "gene",
    "genes",
    "the",
    "of",
    "binding",
    "bind",
    "bound",
    "mice",
    "mouse",
    "a",
    "an",
    "is",
]


def texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(0, 30))) for _ in range(count)]


def streamed(tmp_path, corpus: list[str], settings: bm25.BM25Settings, batch: int) -> bm25s.BM25:
    builder = bm25.BM25Builder(settings)
    builder.open(tmp_path / "bm25", EnglishAnalyzer())
    for first in range(0, len(corpus), batch):
        builder.add_texts(corpus[first : first + batch])
    builder.finish()
    return bm25s.BM25.load(str(tmp_path / "bm25"), mmap=True, show_progress=False)


def direct(corpus: list[str], settings: bm25.BM25Settings) -> bm25s.BM25:
    model = bm25s.BM25(method=settings.method, k1=settings.k1, b=settings.b, delta=settings.delta)
    model.index(EnglishAnalyzer().tokenize(corpus), show_progress=False)
    return model


def dense_matrix(model: bm25s.BM25) -> dict[str, np.ndarray]:
    """Each term's column of scores over all passages, keyed by the term."""
    scores, columns = model.scores, {}
    for term, column in model.vocab_dict.items():
        if column + 1 >= len(scores["indptr"]):
            continue  # bm25s's empty token has no column
        values = np.zeros(scores["num_docs"], np.float32)
        span = slice(scores["indptr"][column], scores["indptr"][column + 1])
        values[scores["indices"][span]] = scores["data"][span]
        columns[term] = values
    return columns


@pytest.mark.parametrize("method", ["lucene", "robertson", "atire", "bm25l", "bm25+"])
@pytest.mark.parametrize("spill", [False, True])
def test_streamed_matrix_equals_bm25s(tmp_path, monkeypatch, method, spill):
    if spill:
        monkeypatch.setattr(bm25, "SPILL_POSTINGS", 50)
    corpus = texts(600)
    settings = bm25.BM25Settings(method=method)
    ours = streamed(tmp_path, corpus, settings, batch=97)
    theirs = direct(corpus, settings)
    assert (tmp_path / "bm25" / bm25.SPILL_FOLDER).exists() is False
    mine, reference = dense_matrix(ours), dense_matrix(theirs)
    assert set(mine) == {term for term in reference if term}
    for term, column in mine.items():
        np.testing.assert_allclose(column, reference[term], rtol=1e-5, atol=1e-6)
    if method in bm25.METHODS_WITH_NONOCCURRENCE:
        order = [
            theirs.vocab_dict[t] for t, _ in sorted(ours.vocab_dict.items(), key=lambda x: x[1])
        ]
        np.testing.assert_allclose(
            ours.nonoccurrence_array, theirs.nonoccurrence_array[order], rtol=1e-5
        )


def test_search_ranks_as_bm25s_and_spill_files_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(bm25, "SPILL_POSTINGS", 100)
    corpus = texts(400, seed=3)
    settings = bm25.BM25Settings()
    builder = bm25.BM25Builder(settings)
    builder.open(tmp_path / "bm25", EnglishAnalyzer())
    builder.add_texts(corpus)
    assert builder.spill.spilled
    builder.finish()
    assert sorted(p.name for p in (tmp_path / "bm25").iterdir()) == sorted(
        [bm25.DATA, bm25.INDICES, bm25.INDPTR, bm25.VOCAB, bm25.PARAMS]
    )
    index = bm25.BM25Index(tmp_path / "bm25", EnglishAnalyzer())
    queries = ["protein binding in mice", "gene cells", "nothing known here"]
    rows, scores = index.search(queries, k=5)
    reference = direct(corpus, settings)
    for query, got, got_scores in zip(queries[:2], rows, scores, strict=False):
        tokens = EnglishAnalyzer().tokenize([query])
        _, want_scores = reference.retrieve(tokens, k=5, show_progress=False)
        np.testing.assert_allclose(got_scores, want_scores[0], rtol=1e-5)
        assert set(got[got_scores > 0]) <= set(np.flatnonzero(reference.get_scores(tokens[0]) > 0))
    assert (rows[2] == -1).all()


def test_a_bm25_only_build_and_search_load_no_neural_library(tmp_path) -> None:
    """What a BM25 index needs decides what is loaded: neither torch, transformers nor faiss."""
    import subprocess
    import sys

    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        "".join(f'{{"id": "d{i}", "text": "{t}"}}\n' for i, t in enumerate(texts(50)))
    )
    code = (
        "import sys, odqa\n"
        f"index = odqa.build_index({str(corpus)!r}, {str(tmp_path / 'idx')!r},"
        " retrievers=['bm25'])\n"
        "with odqa.Searcher(index) as searcher:\n"
        "    assert searcher.search(['protein binding'], k=3)[0]\n"
        "from typer.testing import CliRunner\n"
        "from odqa.cli import app\n"
        "assert CliRunner().invoke(app, ['search', str(index), 'gene', '-k', '2']).exit_code == 0\n"
        "print(sorted(m for m in ('torch', 'transformers', 'faiss') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_files_written_are_those_bm25s_saves(tmp_path):
    """odqa writes bm25s's on-disk form itself (streaming); bm25s's own save is the reference,
    so that a bm25s release that changes it fails here, not in a user's search."""
    import json

    corpus = texts(50, seed=5)
    settings = bm25.BM25Settings(method="bm25+")
    streamed(tmp_path / "ours", corpus, settings, batch=20)
    direct(corpus, settings).save(str(tmp_path / "theirs"))
    ours, theirs = tmp_path / "ours" / "bm25", tmp_path / "theirs"
    assert sorted(p.name for p in ours.iterdir()) == sorted(p.name for p in theirs.iterdir())
    mine = json.loads((ours / bm25.PARAMS).read_text())
    reference = json.loads((theirs / bm25.PARAMS).read_text())
    assert sorted(mine) == sorted(reference)
    assert {key: mine[key] for key in ("k1", "b", "delta", "method", "num_docs")} == {
        key: reference[key] for key in ("k1", "b", "delta", "method", "num_docs")
    }
