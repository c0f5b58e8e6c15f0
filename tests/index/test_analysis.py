"""BM25 analyzers: bm25s-identical English, Kiwi Korean, Unicode generic, language detection."""

from __future__ import annotations

import gzip
import json
import sys
from itertools import islice

import bm25s
import pytest
import Stemmer

from helpers import shared_data
from odqa.errors import IndexFormatError, OdqaError
from odqa.index import analysis
from odqa.index.analysis import (
    EnglishAnalyzer,
    GenericAnalyzer,
    KoreanAnalyzer,
    analyzer_from_config,
    detect_language,
    make_analyzer,
)
from odqa.index.identify import identify_collection

SENTENCES = [
    "The quick brown foxes were running over the lazy dogs!",
    "Vitamin C deficiency causes scurvy; it's treated with ascorbic acid (500 mg/day).",
    "A I x 42 is an e-mail of THE user_name, Café déjà vu — naïve résumés.",
    "",
    "Mitochondria are the powerhouse of the cell, and cells divide by mitosis.",
]


def bm25s_tokens(texts: list[str]) -> list[list[str]]:
    """What bm25s itself produces with English stopwords and the Snowball stemmer."""
    return bm25s.tokenize(
        texts,
        stopwords="en",
        stemmer=Stemmer.Stemmer("english"),
        return_ids=False,
        show_progress=False,
    )


# --- English -----------------------------------------------------------------------------------


def test_english_matches_bm25s_on_sentences() -> None:
    assert EnglishAnalyzer().tokenize(SENTENCES) == bm25s_tokens(SENTENCES)
    assert EnglishAnalyzer().tokenize(["The foxes are running"]) == [["fox", "run"]]


def test_english_matches_bm25s_on_scifact() -> None:
    path = shared_data("beir-scifact", "corpus.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        docs = [json.loads(line) for line in islice(lines, 200)]
    texts = [f"{doc['title']} {doc['text']}" for doc in docs]
    assert EnglishAnalyzer().tokenize(texts) == bm25s_tokens(texts)


def test_english_empty_input() -> None:
    assert EnglishAnalyzer().tokenize([]) == []
    assert EnglishAnalyzer().tokenize(["the a of", ""]) == [[], []]


# --- Korean ------------------------------------------------------------------------------------


def test_korean_keeps_content_morphemes() -> None:
    [tokens] = KoreanAnalyzer().tokenize(["한국어 형태소 분석기를 사용합니다"])
    assert {"한국어", "형태소", "분석기", "사용"} <= set(tokens)
    assert "를" not in tokens


def test_korean_keeps_stems_foreign_words_and_numbers() -> None:
    [tokens] = KoreanAnalyzer().tokenize(["나는 Python과 GPU 3대를 샀다. 아름다운 漢字를 보았다"])
    assert {"python", "gpu", "3", "사", "아름답", "漢字", "보"} <= set(tokens)
    assert not {"는", "과", "다", "었"} & set(tokens)


def test_auto_picks_korean_for_korean_text() -> None:
    sample = ["서울은 대한민국의 수도이다.", "BM25 검색 엔진은 문서를 빠르게 찾는다."]
    assert detect_language(sample) == "ko"
    assert make_analyzer(identify_collection(sample).analysis).name == "ko"


def test_missing_kiwipiepy_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kiwipiepy", None)
    analysis._kiwi.cache_clear()
    with pytest.raises(OdqaError, match=r"pip install 'odqa\[ko\]'"):
        KoreanAnalyzer().tokenize(["한국어"])
    analysis._kiwi.cache_clear()


# --- generic -----------------------------------------------------------------------------------


def test_generic_japanese_bigrams() -> None:
    [tokens] = GenericAnalyzer().tokenize(["東京タワーは高い \uff21\uff22\uff23"])
    assert tokens == ["東京", "京タ", "タワ", "ワー", "ーは", "は高", "高い", "abc"]


def test_generic_chinese_bigrams_and_unigrams() -> None:
    [tokens] = GenericAnalyzer().tokenize(["北京大学 hello世界。中"])
    assert tokens == ["北京", "京大", "大学", "hello", "世界", "中"]


def test_generic_words_keep_marks_and_fold_case() -> None:
    [tokens] = GenericAnalyzer().tokenize(["Straße, हिन्दी भाषा ΣΊΣΥΦΟΣ 2024"])
    assert tokens == ["strasse", "हिन्दी", "भाषा", "σίσυφοσ", "2024"]


# --- detection and configuration ---------------------------------------------------------------


def test_detect_language_rules() -> None:
    assert detect_language(["Scurvy is caused by a lack of vitamin C."]) == "en"
    assert detect_language(["Ein schöner Tag in München"]) == "en"  # Latin script
    assert detect_language(["東京タワーは高い"]) == "generic"
    assert detect_language(["Привет, мир"]) == "generic"
    assert detect_language(["1234 5678", ""]) == "generic"
    assert detect_language(["English " * 10, "한국어" * 10], sample_chars=80) == "en"


@pytest.mark.parametrize(
    ("language", "name"),
    [("en", "en"), ("ko", "ko"), ("generic", "generic"), ("de", "language"),
     ("tr", "language"), ("vi", "language")],
)  # fmt: skip
def test_config_round_trip(language: str, name: str) -> None:
    analyzer = make_analyzer(language)
    config = json.loads(json.dumps(analyzer.config()))
    again = analyzer_from_config(config)
    assert type(again) is type(analyzer) and again.name == config["name"] == name
    text = ["Python 검색 엔진 東京 searching engines Häuser İstanbul'da của"]
    assert again.tokenize(text) == analyzer.tokenize(text)


def test_a_languages_stopwords_are_kept_in_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queries are analysed with the stopwords the index was built with, whatever list the
    installed library ships later."""
    config = make_analyzer("de").config()
    assert "und" in config["stopwords"]
    monkeypatch.setattr("bm25s.stopwords.STOPWORDS_GERMAN", ["haus"])
    assert analyzer_from_config(config).tokenize(["und Haus"]) == [["haus"]]
    assert make_analyzer("de").tokenize(["und Haus"]) == [["und"]]


def test_bad_languages_are_refused() -> None:
    with pytest.raises(OdqaError, match="auto, generic, af, ar"):
        make_analyzer("xx")
    with pytest.raises(IndexFormatError, match="damaged BM25 analyzer"):
        analyzer_from_config({"name": "language", "language": "de"})
    with pytest.raises(OdqaError, match="unknown language 'auto'"):
        make_analyzer("auto")  # the build identifies the language first
    with pytest.raises(IndexFormatError):
        analyzer_from_config({"name": "klingon"})
