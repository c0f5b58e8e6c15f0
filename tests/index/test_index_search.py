"""Building an index and searching it: BM25, dense and hybrid, from any path."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers import listing
from odqa.corpus import ChunkSpec
from odqa.errors import InputError, ModelMismatchError, OdqaError
from odqa.index import BuildOptions, DenseSettings, Manifest, build_index
from odqa.index.options import build_options
from odqa.retrieve import Searcher


def options(model: Path, **overrides) -> BuildOptions:
    settings = {"model": str(model), "language": "en", "chunk": ChunkSpec(tokens=32, overlap=8)}
    return build_options(None, {**settings, **overrides})


@pytest.fixture()
def built(tmp_path: Path, small_corpus: Path, tiny_model: Path) -> Path:
    return build_index(small_corpus, tmp_path / "index", options(tiny_model))


def test_manifest_records_counts_models_and_chunking(built: Path, tiny_model: Path) -> None:
    manifest = Manifest.read(built)
    assert manifest.counts["documents"] == 6
    assert manifest.counts["passages"] > 6  # d5 is long enough to be split
    assert manifest.counts["skipped_empty"] == 0
    dense = manifest.retrievers["dense"]
    assert dense["model"] == str(tiny_model.resolve())
    assert len(dense["sha256"]) == 64 and dense["dim"] == 64 and dense["faiss"] == "Flat"
    assert manifest.retrievers["bm25"]["analyzer"]["name"] == "en"
    assert manifest.chunking == {"tokens": 32, "overlap": 8, "tokenizer": str(tiny_model.resolve())}


def test_bm25_finds_the_right_document_with_text_and_offsets(built: Path) -> None:
    hits = Searcher(built).search(["what does a lack of vitamin C cause"], 3, retriever="bm25")[0]
    assert hits[0].doc_id == "d1"
    assert hits[0].passage.text == "Scurvy is caused by a lack of vitamin C."
    assert hits[0].passage.title == "Scurvy"
    assert (hits[0].passage.start, hits[0].passage.end) == (0, 40)
    assert [hit.rank for hit in hits] == list(range(1, len(hits) + 1))
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


def test_document_unit_returns_distinct_documents_passage_unit_may_repeat(built: Path) -> None:
    searcher = Searcher(built)
    docs = searcher.search(["ocean deep blue"], 6, retriever="bm25")[0]
    assert len({hit.doc_id for hit in docs}) == len(docs)
    passages = searcher.search(["ocean deep blue"], 6, retriever="bm25", unit="passage")[0]
    assert [hit.doc_id for hit in passages][:2] == ["d5", "d5"]


def test_an_empty_query_is_an_error_everywhere(built: Path) -> None:
    from typer.testing import CliRunner

    from odqa.cli import app

    with Searcher(built) as searcher:
        for retriever in ("bm25", "dense", "hybrid"):
            with pytest.raises(OdqaError, match=r"^empty query$"):
                searcher.search(["  "], 3, retriever=retriever)
        with pytest.raises(OdqaError, match=r"empty query \(query 2 of 2\)"):
            searcher.search(["scurvy", ""], 3)
    result = CliRunner().invoke(app, ["search", str(built), ""])
    assert result.exit_code == 2 and "empty query" in result.output


def test_every_passage_maps_back_to_its_document_text(built: Path, small_corpus: Path) -> None:
    texts = {json.loads(line)["id"]: json.loads(line)["text"] for line in small_corpus.open()}
    searcher = Searcher(built)
    for row in range(searcher.collection.num_passages):
        passage = searcher.collection.passage(row)
        assert texts[passage.doc_id][passage.start : passage.end] == passage.text


def test_dense_scores_match_a_direct_computation(built: Path) -> None:
    searcher = Searcher(built)
    dense = searcher.retriever("dense").engine
    query = "cyclins and cell division"
    hits = searcher.search([query], 3, retriever="dense", unit="passage")[0]
    vector = dense.encoder.model.encode([query])[0]
    for hit in hits:
        passage_vector = dense.encoder.model.encode(
            [f"{hit.passage.title} {hit.passage.text}".strip()]
        )[0]
        assert float(vector @ passage_vector) == pytest.approx(hit.score, abs=1e-3)


def test_hybrid_is_default_and_fuses_both(built: Path) -> None:
    searcher = Searcher(built)
    assert searcher.available == ["bm25", "dense", "hybrid"]
    assert searcher.default_retriever == "hybrid"
    assert searcher.retriever().method == "zscore"
    hits = searcher.search(["thiamine deficiency beriberi"], 3)[0]
    assert hits[0].doc_id == "d3"
    minmax = Searcher(built, fusion="minmax").search(["thiamine deficiency beriberi"], 3)[0]
    assert minmax[0].doc_id == "d3"
    assert 0.0 <= minmax[-1].score <= minmax[0].score <= 2.0  # two min-max terms


def test_hybrid_weights_follow_the_index_retriever_order(built: Path) -> None:
    query = ["vitamin deficiency"]
    bm25 = Searcher(built).search(query, 4, retriever="bm25", unit="passage")[0]
    assert len(bm25) >= 3
    for weights in ([1.0, 0.0], [0.0, 1.0]):
        fused = Searcher(built, weights=weights).search(query, 4, unit="passage")[0]
        single = (
            bm25
            if weights[0]
            else Searcher(built).search(query, 4, retriever="dense", unit="passage")[0]
        )
        assert [hit.row for hit in fused][:2] == [hit.row for hit in single][:2]


def test_index_loads_after_being_moved(built: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "moved-index"
    shutil.move(str(built), moved)
    hits = Searcher(moved).search(["vitamin D rickets"], 1, retriever="bm25")[0]
    assert hits[0].doc_id == "d2" and "vitamin D" in hits[0].passage.text


def test_other_model_at_search_time_is_refused(built: Path, tmp_path: Path) -> None:
    searcher = Searcher(built, model="embedded")
    with pytest.raises(ModelMismatchError, match="all-MiniLM-L6-v2"):
        searcher.search(["x"], 1, retriever="dense")


def test_unknown_retriever_is_named(tmp_path: Path, small_corpus: Path, tiny_model: Path) -> None:
    path = build_index(
        small_corpus, tmp_path / "bm25-only", options(tiny_model, retrievers=["bm25"])
    )
    searcher = Searcher(path)
    assert searcher.available == ["bm25"]
    with pytest.raises(OdqaError, match="no 'dense' retriever; it has bm25"):
        searcher.search(["x"], 1, retriever="dense")
    assert not (path / "dense").exists()


def test_query_without_known_words_returns_nothing_from_bm25(built: Path) -> None:
    assert Searcher(built).search(["zzzqqq"], 5, retriever="bm25") == [[]]


def test_empty_documents_are_skipped_counted_and_listed(tmp_path: Path, tiny_model: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        '{"id": "a", "text": "alpha beta"}\n{"id": "b", "text": ""}\n'
        '{"id": "c", "title": "Only a title", "text": ""}\n'
    )
    path = build_index(corpus, tmp_path / "idx", options(tiny_model))
    manifest = Manifest.read(path)
    assert manifest.counts == {"documents": 2, "passages": 2, "skipped_empty": 1}
    assert manifest.skipped_ids == ["b"]
    hits = Searcher(path).search(["title"], 1, retriever="bm25")[0]
    assert hits[0].doc_id == "c"


def test_bad_corpus_leaves_no_index_and_keeps_the_old_one(
    tmp_path: Path, small_corpus: Path, tiny_model: Path
) -> None:
    target = build_index(small_corpus, tmp_path / "idx", options(tiny_model))
    before = sorted(p.name for p in target.iterdir())
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "fine"}\n{"id": "y", "text": oops}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2"):
        build_index(bad, target, options(tiny_model, overwrite=True))
    assert sorted(p.name for p in target.iterdir()) == before
    assert listing(tmp_path) == ["bad.jsonl", "corpus.jsonl", "idx"]
    with pytest.raises(InputError, match=r"bad.jsonl:2"):
        build_index(bad, tmp_path / "new", options(tiny_model))
    assert not (tmp_path / "new").exists()


def test_empty_corpus_is_an_error(tmp_path: Path, tiny_model: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match=r"empty\.jsonl: the corpus holds no documents"):
        build_index(empty, tmp_path / "idx", options(tiny_model))


@pytest.mark.parametrize(
    ("kind", "dtype"), [("hnsw", "float32"), ("ivf", "float16"), ("flat", "float16")]
)
def test_faiss_kinds_find_the_exact_top_hit(
    tmp_path: Path, small_corpus: Path, tiny_model: Path, kind: str, dtype: str
) -> None:
    exact = Searcher(build_index(small_corpus, tmp_path / "exact", options(tiny_model)))
    other = Searcher(
        build_index(
            small_corpus,
            tmp_path / kind,
            options(tiny_model, dense=DenseSettings(index=kind, dtype=dtype)),
        )
    )
    query = ["cell division cycle"]
    a = exact.search(query, 3, retriever="dense", unit="passage")[0]
    b = other.search(query, 3, retriever="dense", unit="passage")[0]
    assert a[0].row == b[0].row
    np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=5e-3)


def test_ivfpq_on_a_tiny_corpus_is_refused_with_advice(
    tmp_path: Path, small_corpus: Path, tiny_model: Path
) -> None:
    with pytest.raises(OdqaError, match="ivfpq needs at least 1,000 passages"):
        build_index(
            small_corpus, tmp_path / "pq", options(tiny_model, dense=DenseSettings(index="ivfpq"))
        )
    assert not (tmp_path / "pq").exists()


def test_ivfpq_factory_for_a_large_corpus() -> None:
    from odqa.index.dense import factory_string

    assert factory_string("ivfpq", "float32", 1_000_000, 384) == "IVF4000,PQ48"
    assert factory_string("ivf", "float16", 10_000, 384) == "IVF256,SQfp16"
