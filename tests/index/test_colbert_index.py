"""ColBERT in an odqa index: build, PLAID vs exhaustive, hybrid, reranking, refusals."""

from __future__ import annotations

import itertools
import json
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import odqa
from helpers import json_lines
from odqa.cli import app
from odqa.corpus import ChunkSpec
from odqa.errors import InputError, ModelMismatchError
from odqa.index.colbert import ColBERTBuild
from odqa.models.colbert import ColBERTEncoder
from odqa.retrieve.rerank import rerank


def build(corpus: Path, target: Path, model: Path, **settings) -> Path:
    defaults = {"model": str(model), "language": "en", "chunk": ChunkSpec(tokens=32, overlap=8)}
    return odqa.build_index(corpus, target, **{**defaults, **settings})


@pytest.fixture()
def colbert_index(tmp_path: Path, small_corpus: Path, tiny_model: Path) -> Path:
    return build(small_corpus, tmp_path / "idx", tiny_model, retrievers=["bm25", "colbert"])


def test_manifest_records_the_late_index(colbert_index: Path, tiny_model: Path) -> None:
    settings = odqa.Manifest.read(colbert_index).retrievers["colbert"]
    assert settings["model"] == str(tiny_model.resolve()) and settings["layout"] == "plain"
    assert settings["nbits"] == 2 and settings["centroids"] >= 1 and settings["dim"] == 64
    assert (colbert_index / "colbert" / "late.json").is_file()


def test_plaid_agrees_with_exhaustive_and_hits_map_to_text(colbert_index: Path) -> None:
    query = ["lack of vitamin C causes scurvy"]
    plaid = odqa.Searcher(colbert_index).search(query, 3, retriever="colbert", unit="passage")[0]
    exact = odqa.Searcher(colbert_index, exhaustive=True).search(
        query, 100, retriever="colbert", unit="passage"
    )[0]
    # PLAID may miss a near-tie its one probed cell does not reach (a random tiny model scores
    # every passage within a few percent), but what it returns is scored exactly
    exact_scores = {hit.row: hit.score for hit in exact}
    assert plaid[0].row == exact[0].row
    assert [h.score for h in plaid] == pytest.approx([exact_scores[h.row] for h in plaid], abs=1e-4)
    assert len({h.row for h in plaid} & {h.row for h in exact[:5]}) >= 2
    assert plaid[0].passage.text in Path(colbert_index / "documents.jsonl").read_text()


def test_scores_are_maxsim_of_the_encoder_vectors(colbert_index: Path, tiny_model: Path) -> None:
    searcher = odqa.Searcher(colbert_index, exhaustive=True)
    hit = searcher.search(["cyclins"], 1, retriever="colbert", unit="passage")[0][0]
    text = f"{hit.passage.title} {hit.passage.text}".strip()
    scored = rerank("cyclins", [text], ColBERTEncoder(tiny_model))
    # the index holds 2-bit residuals: close to, not equal to, the uncompressed score
    assert scored[0][1] == pytest.approx(hit.score, rel=0.1)


def test_hybrid_includes_colbert_and_reranking_is_offered(colbert_index: Path) -> None:
    searcher = odqa.Searcher(colbert_index)
    assert searcher.available == ["bm25", "colbert", "hybrid", "bm25+colbert", "hybrid+colbert"]
    assert [r.name for r in searcher.retriever("hybrid").retrievers] == ["bm25", "colbert"]
    bm25 = searcher.search(["vitamin deficiency"], 10, retriever="bm25", unit="passage")[0]
    reranked = searcher.search(
        ["vitamin deficiency"], 10, retriever="bm25+colbert", unit="passage"
    )[0]
    assert {h.row for h in reranked} == {h.row for h in bm25}  # same candidates, new order
    assert all(a.score >= b.score for a, b in itertools.pairwise(reranked))


def test_rerank_without_an_index_orders_by_maxsim(tiny_model: Path) -> None:
    encoder = ColBERTEncoder(tiny_model)
    docs = ["kinases phosphorylate proteins", "the ocean is blue", "proteins and kinases"]
    ranked = rerank("kinases proteins", docs, encoder)
    assert sorted(i for i, _ in ranked) == [0, 1, 2]
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    assert rerank("x", [], encoder) == []
    assert len(rerank("kinases proteins", docs, encoder, k=1)) == 1


def test_other_model_at_search_time_is_refused(colbert_index: Path) -> None:
    searcher = odqa.Searcher(colbert_index, model="embedded")
    with pytest.raises(ModelMismatchError, match="all-MiniLM-L6-v2"):
        searcher.search(["x"], 1, retriever="colbert")


def test_long_passages_are_truncated_and_counted(
    tmp_path: Path, small_corpus: Path, tiny_model: Path
) -> None:
    path = build(
        small_corpus,
        tmp_path / "long",
        tiny_model,
        retrievers=["colbert"],
        chunk=ChunkSpec(tokens=512, overlap=0),
        colbert=odqa.ColBERTSettings(model=None),
    )
    settings = odqa.Manifest.read(path).retrievers["colbert"]
    assert settings["doc_maxlen"] == 256 and settings["truncated_passages"] == 1  # d5


def test_punctuation_only_query_still_searches(colbert_index: Path) -> None:
    hits = odqa.Searcher(colbert_index).search(["?!"], 2, retriever="colbert")[0]
    assert len(hits) == 2


def test_failed_build_keeps_the_previous_index(
    colbert_index: Path, tmp_path: Path, tiny_model: Path
) -> None:
    before = json.loads((colbert_index / "manifest.json").read_text())
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\n{"id": "a", "text": "duplicate"}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:2: field 'id'"):
        build(bad, colbert_index, tiny_model, retrievers=["colbert"], overwrite=True)
    assert json.loads((colbert_index / "manifest.json").read_text()) == before


def test_cli_index_search_eval_with_colbert(
    tmp_path: Path, small_corpus: Path, tiny_model: Path
) -> None:
    runner = CliRunner()
    target = tmp_path / "cli-idx"
    result = runner.invoke(
        app,
        [
            "index",
            str(small_corpus),
            str(target),
            "--retrievers",
            "colbert",
            "--model",
            str(tiny_model),
            "--nbits",
            "4",
            "--chunk-tokens",
            "32",
            "--chunk-overlap",
            "8",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "retriever colbert" in result.output and "nbits=4" in result.output
    result = runner.invoke(
        app, ["search", str(target), "thiamine", "--retriever", "colbert", "--exhaustive", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert len(json_lines(result.output)) == 6


def test_plaid_settings_reach_the_index_and_wide_ones_equal_exhaustive(
    colbert_index: Path,
) -> None:
    queries = ["lack of vitamin C causes scurvy", "cyclins", "thiamine deficiency"]
    wide = odqa.PlaidSettings(ncells=64, centroid_score_threshold=-1.0, ndocs=4096)
    plaid = odqa.Searcher(colbert_index, plaid=wide)
    exact = odqa.Searcher(colbert_index, exhaustive=True)
    found = plaid.search(queries, 5, retriever="colbert", unit="passage")
    expected = exact.search(queries, 5, retriever="colbert", unit="passage")
    for hits, reference in zip(found, expected, strict=True):
        assert [h.score for h in hits] == pytest.approx([h.score for h in reference], abs=1e-5)
        for hit, ref in zip(hits, reference, strict=True):  # rows differ only within a tie
            tied = {r.row for r in reference if abs(r.score - ref.score) <= 1e-5}
            assert hit.row == ref.row or hit.row in tied, (hit, ref)


def test_cli_plaid_options_are_checked(colbert_index: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        app,
        ["search", str(colbert_index), "thiamine", "-r", "colbert", "--ndocs", "8", "--json"],
    )
    assert ok.exit_code == 0, ok.output
    assert len(json_lines(ok.output)) > 0
    bad = runner.invoke(
        app, ["search", str(colbert_index), "thiamine", "-r", "colbert", "--ndocs", "0"]
    )
    assert bad.exit_code != 0 and "ndocs must be at least 1, got 0" in bad.output


def test_the_codec_training_and_the_inverted_file_are_announced_before_they_run(
    tmp_path: Path, small_corpus: Path, tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="odqa"):
        index = build(small_corpus, tmp_path / "idx", tiny_model, retrievers=["colbert"])
    notes = [r.getMessage() for r in caplog.records if "training the codec" in r.getMessage()]
    meta = json.loads((index / "colbert" / "late.json").read_text())
    assert len(notes) == 1
    assert f"{meta['num_centroids']:,} centroids" in notes[0]
    assert f"{meta['sample_tokens']:,} sampled tokens" in notes[0]
    assert re.search(r"about \d+ MiB of memory", notes[0])
    last = caplog.records[-1].getMessage()  # the step after the bar is not silent
    assert f"writing the inverted file of {meta['num_tokens']:,} tokens" in last


def test_the_plan_counts_the_codec_training_in_memory() -> None:
    """The plan's memory covers the training sample held as float16 with its float32 copy
    (a 100k-passage build peaked at 6.8 GB while its plan said 1.0 GiB)."""
    build = ColBERTBuild.__new__(ColBERTBuild)  # only its writer's record is read
    meta = {"num_tokens": 1000, "num_passages": 10, "dim": 128, "nbits": 2}
    small, large = (
        {**meta, "num_centroids": 1024, "sample_tokens": tokens} for tokens in (1000, 3_000_000)
    )
    build.writer = SimpleNamespace(meta=large)
    memory = build.footprint(1_000_000).memory
    assert memory >= 3_000_000 * 128 * (2 + 4)
    build.writer = SimpleNamespace(meta=small)
    assert build.footprint(1_000_000).memory < memory - 3_000_000 * 128 * 5


def over_twice_the_trained_tokens() -> list[str]:
    """Texts whose tokens take ``small_corpus``'s ColBERT index past twice those its
    centroids were trained on (an add of them re-clusters)."""
    return [f"Vitamin {n} deficiency is studied in cohort {n} of patients." for n in range(80)]


def test_an_add_that_re_clusters_says_so_before_it_starts(
    tmp_path: Path, small_corpus: Path, tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Re-clustering re-encodes every token (about 45 min at 1M passages): an add that
    triggers it says so first, not only in its report."""
    index = build(small_corpus, tmp_path / "idx", tiny_model, retrievers=["colbert"])
    trained = json.loads((index / "colbert" / "late.json").read_text())["num_tokens"]
    texts = over_twice_the_trained_tokens()
    with caplog.at_level(logging.WARNING, logger="odqa"):
        odqa.add_documents(index, [odqa.Document(f"n{n}", text) for n, text in enumerate(texts)])
    meta = json.loads((index / "colbert" / "late.json").read_text())
    assert meta["tokens_at_training"] == meta["num_tokens"] > 2 * trained
    notes = [r.getMessage() for r in caplog.records if "re-clustering" in r.getMessage()]
    assert len(notes) == 1
    assert f"{meta['num_tokens']:,} tokens" in notes[0]


def test_odqa_add_shows_the_re_clustering_on_a_bar(
    tmp_path: Path, small_corpus: Path, tiny_model: Path
) -> None:
    """An ``odqa add`` that re-clusters shows the re-encoding of every token on a bar."""
    index = build(small_corpus, tmp_path / "idx", tiny_model, retrievers=["colbert"])
    texts = over_twice_the_trained_tokens()
    added = tmp_path / "added.jsonl"
    added.write_text(
        "".join(json.dumps({"id": f"n{n}", "text": t}) + "\n" for n, t in enumerate(texts))
    )
    result = CliRunner().invoke(app, ["add", str(index), str(added)])
    assert result.exit_code == 0, result.output
    meta = json.loads((index / "colbert" / "late.json").read_text())
    assert "re-encoding: 100%" in result.stderr
    assert f"{meta['num_tokens']}/{meta['num_tokens']}" in result.stderr
