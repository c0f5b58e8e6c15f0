"""BM25 in segments scores as bm25s scores a whole collection, every variant; segments,
merges and deleted rows score as an index built of the live passages alone."""

from __future__ import annotations

import itertools
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bm25s
import numpy as np
import pytest

import odqa.index.bm25_store as store
from odqa.index.analysis import EnglishAnalyzer
from odqa.index.bm25 import BM25Search
from odqa.index.settings import BM25Settings

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
QUERIES = ["protein binding in mice", "gene cells", "the genes of a mouse", "nothing known here"]
METHODS = ["lucene", "robertson", "atire", "bm25l", "bm25+"]


def texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(0, 30))) for _ in range(count)]


def segments(folder: Path, corpus: list[str], cuts: list[int], batch: int = 97) -> Path:
    """``corpus`` written as segments starting at each of ``cuts`` (rows), ``batch`` texts at
    a time; returns the BM25 folder."""
    bounds = [*cuts, len(corpus)]
    for first, end in itertools.pairwise(bounds):
        writer = store.SegmentWriter(store.next_segment(folder), EnglishAnalyzer(), first)
        for start in range(first, end, batch):
            writer.add(corpus[start : min(end, start + batch)])
        writer.finish()
    return folder


def searched(folder: Path, settings: BM25Settings, deleted=None, k: int = 600) -> list[dict]:
    """Each query's scores by row (those that score)."""
    engine = BM25Search(folder, EnglishAnalyzer(), settings, deleted)
    rows, scores = engine.search(QUERIES, k)
    return [
        {int(r): float(s) for r, s in zip(found, found_scores, strict=True) if r >= 0}
        for found, found_scores in zip(rows, scores, strict=True)
    ]


def reference(
    corpus: list[str], settings: BM25Settings, queries: list[str] = QUERIES
) -> list[dict]:
    """bm25s's own scores of the whole corpus, by row (those above 0)."""
    model = bm25s.BM25(method=settings.method, k1=settings.k1, b=settings.b, delta=settings.delta)
    model.index(EnglishAnalyzer().tokenize(corpus), show_progress=False)
    wanted = []
    for tokens in EnglishAnalyzer().tokenize(queries):
        known = [token for token in tokens if token in model.vocab_dict]
        scores = model.get_scores(known) if known else np.zeros(len(corpus))
        wanted.append({int(row): float(scores[row]) for row in np.flatnonzero(scores > 0)})
    return wanted


def assert_same(ours: list[dict], theirs: list[dict], renumber=lambda row: row) -> None:
    for mine, wanted in zip(ours, theirs, strict=True):
        assert {renumber(row) for row in mine} == set(wanted)
        for row, score in mine.items():
            assert score == pytest.approx(wanted[renumber(row)], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("spill", [False, True])
def test_segment_scores_equal_bm25s(tmp_path, monkeypatch, method, spill):
    if spill:
        monkeypatch.setattr(store, "SPILL_POSTINGS", 50)
    corpus = texts(600)
    settings = BM25Settings(method=method)
    folder = segments(tmp_path / "bm25", corpus, [0])
    assert not any(path.name.endswith(store.SPILL_FOLDER) for path in folder.rglob("*"))
    assert_same(searched(folder, settings), reference(corpus, settings))


@pytest.mark.parametrize("method", ["lucene", "bm25+"])
def test_several_segments_and_deleted_rows_score_as_the_live_passages_alone(tmp_path, method):
    corpus = texts(500, seed=1)
    settings = BM25Settings(method=method)
    deleted = np.zeros(len(corpus), bool)
    deleted[random.Random(2).sample(range(len(corpus)), 150)] = True
    live = np.flatnonzero(~deleted)
    folder = segments(tmp_path / "bm25", corpus, [0, 200, 350, 480])
    assert len(store.segment_folders(folder)) == 4
    expected = reference([corpus[row] for row in live], settings)
    assert_same(
        searched(folder, settings, deleted), expected, lambda row: int(np.searchsorted(live, row))
    )
    parts = store.segment_folders(folder)
    store.merge(folder, parts[1:], deleted, drop_deleted=True)  # the three later ones
    store.merge(folder, store.segment_folders(folder)[:1], deleted, drop_deleted=True)
    assert len(store.segment_folders(folder)) == 2
    assert_same(
        searched(folder, settings, deleted), expected, lambda row: int(np.searchsorted(live, row))
    )


def test_search_ranks_by_score_then_row_and_honours_allowed(tmp_path):
    corpus = texts(300, seed=3)
    folder = segments(tmp_path / "bm25", corpus, [0])
    engine = BM25Search(folder, EnglishAnalyzer(), BM25Settings(), None)
    rows, scores = engine.search(QUERIES, k=5)
    for found, found_scores in zip(rows, scores, strict=True):
        pairs = [(-s, r) for r, s in zip(found, found_scores, strict=True) if r >= 0]
        assert pairs == sorted(pairs)
    assert (rows[3] == -1).all()  # no term of the last query is known
    allowed = np.zeros(len(corpus), bool)
    allowed[::2] = True
    rows, _ = engine.search(QUERIES[:1], k=10, allowed=allowed)
    assert all(row % 2 == 0 for row in rows[0] if row >= 0)


def test_tf_saturates_at_the_largest_uint16(tmp_path):
    corpus = ["cell " * 70_000, "cell protein"]
    folder = segments(tmp_path / "bm25", corpus, [0])
    opened = store.Segment.open(store.segment_folders(folder)[0])
    assert int(np.max(opened.tf)) == store.TF_MAX


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


def test_top_k_of_rare_and_common_terms_with_a_small_cache_and_many_threads(tmp_path, monkeypatch):
    """Queries touching few rows (scored over their postings) and most rows (the whole
    vector) give the best k of every score; kept term scores, evicted or not, and threads
    searching at once change nothing."""
    rng = random.Random(4)
    rare = [f"rare{number}" for number in range(400)]
    corpus = [
        " ".join(rng.choices(WORDS, k=rng.randint(1, 12)) + rng.choices(rare, k=2))
        for _ in range(3000)
    ]
    queries = [" ".join(rng.choices(rare, k=3)) for _ in range(30)]
    queries += [" ".join(rng.choices(WORDS, k=4)) for _ in range(30)]
    folder = segments(tmp_path / "bm25", corpus, [0, 1700])
    settings = BM25Settings()
    wanted = [
        sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
        for scores in reference(corpus, settings, queries)
    ]
    monkeypatch.setattr(store, "CACHED_POSTINGS", 10)
    monkeypatch.setattr(store, "CACHED_BYTES", 4000)  # a few terms: evictions all along
    engine = BM25Search(folder, EnglishAnalyzer(), settings, None)

    def top(query: str) -> list[tuple[int, float]]:
        rows, scores = engine.search([query], 7)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

    def check(found: list[tuple[int, float]], full: list[tuple[int, float]]) -> None:
        assert [score for _, score in found] == pytest.approx([s for _, s in full[:7]], rel=1e-6)
        scores_of = dict(full)
        assert all(scores_of[row] == pytest.approx(score, rel=1e-6) for row, score in found)

    for query, full in zip(queries * 2, wanted * 2, strict=True):
        check(top(query), full)
    with ThreadPoolExecutor(4) as pool:
        for found, full in zip(pool.map(top, queries * 5), wanted * 5, strict=True):
            check(found, full)
