"""End to end with the real embedded MiniLM and the bundled sample, and a Korean collection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import odqa
from helpers import SAMPLE


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("sample") / "index"
    return odqa.build_index(SAMPLE / "corpus.jsonl", target)


@pytest.mark.slow
def test_embedded_model_retrieves_the_sample_well(sample_index: Path) -> None:
    queries = odqa.read_queries(SAMPLE / "queries.jsonl")
    qrels = odqa.read_qrels(SAMPLE / "qrels.tsv")
    searcher = odqa.Searcher(sample_index)
    scores = {
        name: odqa.evaluate_index(searcher, queries, qrels, retriever=name)["ndcg@10"]
        for name in ("bm25", "dense", "hybrid")
    }
    # 30 SciFact claims over 404 abstracts: far easier than the full collection
    assert scores["bm25"] > 0.7 and scores["dense"] > 0.7
    assert scores["hybrid"] >= min(scores["bm25"], scores["dense"])
    manifest = odqa.Manifest.read(sample_index)
    assert manifest.retrievers["dense"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert manifest.retrievers["bm25"]["analyzer"]["name"] == "en"


@pytest.mark.slow
def test_sample_run_file_round_trips(sample_index: Path, tmp_path: Path) -> None:
    queries = odqa.read_queries(SAMPLE / "queries.jsonl")
    run = odqa.run_queries(odqa.Searcher(sample_index), queries, retriever="bm25", k=20)
    odqa.write_trec_run(run, tmp_path / "run.trec")
    assert odqa.read_trec_run(tmp_path / "run.trec") == run


def test_korean_collection_is_analysed_by_morphemes(tmp_path: Path) -> None:
    docs = [
        {"id": "k1", "text": "서울은 대한민국의 수도이며 가장 큰 도시입니다."},
        {"id": "k2", "text": "김치는 배추와 고춧가루로 만드는 한국의 전통 음식입니다."},
        {"id": "k3", "text": "한라산은 제주도에 있는 화산입니다."},
    ]
    corpus = tmp_path / "ko.jsonl"
    corpus.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), "utf-8")
    path = odqa.build_index(corpus, tmp_path / "idx", retrievers=["bm25"], language="auto")
    assert odqa.Manifest.read(path).retrievers["bm25"]["analyzer"]["name"] == "ko"
    searcher = odqa.Searcher(path)
    # "수도는" and "음식을" only match through their morphemes 수도 / 음식
    assert searcher.search(["한국의 수도는?"], 1)[0][0].doc_id == "k1"
    assert searcher.search(["전통 음식을 알려줘"], 1)[0][0].doc_id == "k2"
