"""A collection's language: identified at build time, analysed as that language, recorded."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from odqa.cli import app
from odqa.index import Manifest, build_index
from odqa.index.analysis import analyzer_from_config, make_analyzer
from odqa.index.identify import identify_collection
from odqa.index.segmenters import SEGMENTERS
from odqa.retrieve import Searcher

GERMAN = [
    "Die Bundesrepublik Deutschland besteht aus sechzehn Ländern mit eigenen Regierungen.",
    "Der Rhein fließt von den Alpen durch mehrere Länder bis zur Nordsee bei Rotterdam.",
    "Die Kinder spielten am Nachmittag im Garten ihrer Großeltern hinter dem alten Haus.",
    "Im Winter fahren viele Familien in die Berge, um dort Ski zu fahren und zu wandern.",
]
SPANISH = [
    "La ciudad de Buenos Aires es la capital de la República Argentina desde hace siglos.",
    "Los niños jugaban en el parque mientras sus padres hablaban de la cosecha del año.",
    "El río Amazonas atraviesa varios países de América del Sur antes de llegar al mar.",
]
TURKISH = [
    "İstanbul'un tarihi yarımadası, yüzyıllar boyunca pek çok imparatorluğa başkentlik yaptı.",
    "Çocuklar öğleden sonra bahçede oynarken anneleri mutfakta yemek hazırlıyordu.",
    "Irmakların kenarındaki köylerde balıkçılık hâlâ önemli bir geçim kaynağıdır.",
]
VIETNAMESE = [
    "Hà Nội là thủ đô của nước Cộng hòa Xã hội chủ nghĩa Việt Nam từ năm một nghìn chín trăm.",
    "Những đứa trẻ chơi đùa trong vườn suốt buổi chiều trong khi cha mẹ chúng làm việc.",
]
ENGLISH = [
    "Scurvy is caused by a lack of vitamin C in the diet of sailors on long voyages.",
    "Rickets comes from too little vitamin D and sunlight in childhood, softening bones.",
]


def write_corpus(path: Path, texts: list[str]) -> Path:
    lines = [
        json.dumps({"id": f"d{n}", "text": text}, ensure_ascii=False)
        for n, text in enumerate(texts)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("texts", "code", "analysis"),
    [(GERMAN, "de", "de"), (SPANISH, "es", "es"), (TURKISH, "tr", "tr"),
     (VIETNAMESE, "vi", "vi"), (ENGLISH, "en", "en")],
)  # fmt: skip
def test_each_language_is_identified_and_analysed_as_itself(
    texts: list[str], code: str, analysis: str
) -> None:
    found = identify_collection(texts)
    assert (found.code, found.analysis, found.how) == (code, analysis, "identified")
    assert found.voted == len(texts) and found.shares == {code: 1.0}


def test_a_mix_of_three_languages_is_analysed_generically_and_said_so() -> None:
    found = identify_collection(GERMAN[:2] + SPANISH[:2] + TURKISH[:2])
    assert (found.code, found.analysis) == ("mixed", "generic")
    assert set(found.shares) == {"de", "es", "tr"}
    line = found.describe()
    assert "mixed (German (de) 33%" in line and "generic" in line


def test_text_with_no_language_falls_back_to_its_script() -> None:
    texts = ["12 345 6789 10.5", "https://example.com/a/b?c=d", "x = f(y) + 2 * z_1;"]
    found = identify_collection(texts)
    assert (found.code, found.how, found.voted) == ("unknown", "script", 0)
    assert found.analysis == "en"  # Latin letters: as odqa analysed them before
    assert "not identified" in found.describe() and "--language" in found.describe()
    assert identify_collection(["12 34", "56"]).analysis == "generic"  # no letters at all


def test_one_passage_is_enough_when_it_says_enough() -> None:
    assert identify_collection(GERMAN[:1]).code == "de"
    assert identify_collection(["Vitamin C"]).code == "unknown"  # two words tell nothing


def test_a_named_language_is_not_identified() -> None:
    found = identify_collection(ENGLISH, "tr")
    assert (found.code, found.analysis, found.how) == ("tr", "tr", "named")
    segmented = "zh" if SEGMENTERS["zh"].installed() else "generic"  # jieba words, else bigrams
    assert identify_collection(ENGLISH, "zh").analysis == segmented


def test_turkish_is_lowercased_as_turkish() -> None:
    analyzer = make_analyzer("tr")
    tokens = analyzer.tokenize(["IRMAK İstanbul'da", "ırmak istanbul"])
    assert tokens[0] == tokens[1]  # dotless I, dotted İ, the suffix after the apostrophe
    english = make_analyzer("en").tokenize(["IRMAK İstanbul'da"])[0]
    assert english != tokens[0]


def test_german_words_are_stemmed_and_stopwords_dropped() -> None:
    analyzer = make_analyzer("de")
    (tokens,) = analyzer.tokenize(["Die Kinder spielten mit den Häusern"])
    assert "die" not in tokens and "mit" not in tokens
    assert analyzer.tokenize(["Haus"])[0] == analyzer.tokenize(["Häuser"])[0]
    assert make_analyzer("en").tokenize(["Häuser"]) != analyzer.tokenize(["Häuser"])


def test_a_german_collection_is_analysed_as_german_and_said_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corpus = write_corpus(tmp_path / "de.jsonl", GERMAN)
    with caplog.at_level(logging.WARNING, logger="odqa"):
        index = build_index(corpus, tmp_path / "idx", retrievers=["bm25"])
    assert any("language: German (de)" in r.getMessage() for r in caplog.records)
    manifest = Manifest.read(index)
    assert manifest.language["code"] == "de" and manifest.language["how"] == "identified"
    with Searcher(index) as searcher:
        hits = searcher.search(["Häuser der Großeltern"], k=1, with_text=False)[0]
    assert hits[0].doc_id == "d2"  # "Großeltern" (stopword "der" dropped)
    result = CliRunner().invoke(app, ["info", str(index)])
    assert result.exit_code == 0, result.output
    assert "language: German (de)" in result.output and "german stemmer" in result.output


@pytest.mark.parametrize(
    ("texts", "said"),
    [(["12 345", "678 9.10", "https://x.org/1", "x = f(y);"], "language: not identified"),
     (GERMAN[:2] + SPANISH[:2] + TURKISH[:2], "language: mixed (German (de) 33%"),
     (TURKISH[:1], "language: Turkish (tr) (Turkish (tr) 100%; 1 of 1 sampled")],
)  # fmt: skip
def test_the_command_line_says_what_it_chose_and_why(
    tmp_path: Path, texts: list[str], said: str
) -> None:
    corpus = write_corpus(tmp_path / "c.jsonl", texts)
    result = CliRunner().invoke(
        app, ["index", str(corpus), str(tmp_path / "idx"), "--retrievers", "bm25"]
    )
    assert result.exit_code == 0, result.output
    assert said in result.output and "BM25 analysis:" in result.output
    assert "Traceback" not in result.output


def test_korean_without_kiwipiepy_is_analysed_generically_and_said_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    finder = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "kiwipiepy" else finder(name, *a),
    )
    found = identify_collection(["서울은 대한민국의 수도이며 한강을 끼고 있는 가장 큰 도시이다."])
    assert (found.code, found.analysis) == ("ko", "generic")
    assert "pip install 'odqa[ko]'" in found.describe()


SEGMENTED = [
    ("th", "pythainlp", "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย", "เมืองหลวง"),
    ("zh", "jieba", "北京大学的学生喜欢在图书馆读书。", "图书馆"),
    ("ja", "sudachipy", "東京タワーは東京都港区にある電波塔です。", "電波塔"),
]


@pytest.mark.parametrize(("code", "module", "text", "word"), SEGMENTED)
def test_unspaced_scripts_are_cut_into_words_where_a_segmenter_is_installed(
    code: str, module: str, text: str, word: str
) -> None:
    pytest.importorskip(module)
    analyzer = make_analyzer(code)
    assert analyzer.name == "segmented" and identify_collection([text * 3]).analysis == code
    (tokens,) = analyzer.tokenize([text])
    assert word in tokens
    bigrams = make_analyzer("generic").tokenize([text])[0]
    assert (set(bigrams) <= set(tokens)) == (code != "th")  # Thai: words alone (measured)
    again = analyzer_from_config(json.loads(json.dumps(analyzer.config())))
    assert again.tokenize([text]) == [tokens]


def test_a_segmenter_of_another_version_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("jieba")
    config = {**make_analyzer("zh").config(), "segmenter": "jieba 0.1"}
    with caplog.at_level(logging.WARNING, logger="odqa"):
        analyzer_from_config(config)
    assert any("analysed with jieba 0.1" in r.getMessage() for r in caplog.records)


def test_thai_search_finds_the_word_bigrams_miss(tmp_path: Path) -> None:
    pytest.importorskip("pythainlp")
    texts = [
        "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย มีประชากรมาก",
        "เชียงใหม่เป็นจังหวัดทางภาคเหนือของประเทศไทย มีภูเขาสวยงาม",
        "ภูเก็ตเป็นเกาะในทะเลอันดามัน มีชายหาดที่สวยงาม",
    ]
    corpus = write_corpus(tmp_path / "th.jsonl", texts)
    index = build_index(corpus, tmp_path / "idx", retrievers=["bm25"])
    assert Manifest.read(index).language["analysis"] == "th"
    with Searcher(index) as searcher:
        hits = searcher.search(["เมืองหลวงของไทยคือที่ไหน"], k=1, with_text=False)[0]
    assert hits[0].doc_id == "d0"


def test_an_unknown_language_code_is_one_line(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "de.jsonl", GERMAN)
    result = CliRunner().invoke(
        app, ["index", str(corpus), str(tmp_path / "idx"), "--language", "xx"]
    )
    assert result.exit_code == 2 and "unknown language 'xx'" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "idx").exists()
