"""The sentence reader: sentence splitting in several scripts, the best sentence, its offsets."""

from __future__ import annotations

import itertools

import pytest

from odqa.errors import OdqaError
from odqa.read import SentenceReader, make_reader
from odqa.read.answer import Evidence
from odqa.read.sentence import sentence_spans

SCURVY = "Scurvy is caused by a lack of vitamin C in the diet."
DECOY = Evidence(
    "d1",
    "d1#0",
    "Ships of the navy sailed for months. The moon raises the tides of the sea.",
    "Navy",
    retrieval_score=12.0,
)
ANSWERING = Evidence(
    "d2",
    "d2#0",
    f"Paris is the capital of France.  {SCURVY} Lemons were carried on board.",
    "Scurvy",
    retrieval_score=3.0,
)


@pytest.fixture(scope="module")
def reader() -> SentenceReader:
    return SentenceReader(device="cpu")


BANG, ASK = "\uff01", "\uff1f"  # full-width ! and ?


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        (
            "Dr. Smith met J. Doe in the U.S. in 1990. It was 3.5 km away! Was it? Yes.",
            ["Dr. Smith met J. Doe in the U.S. in 1990.", "It was 3.5 km away!", "Was it?", "Yes."],
        ),
        (
            'He said "stop." Then he left.\n\nA new paragraph',
            ['He said "stop."', "Then he left.", "A new paragraph"],
        ),
        (
            f"北京是中国的首都。上海是最大的城市{BANG}你去过吗{ASK}",
            ["北京是中国的首都。", f"上海是最大的城市{BANG}", f"你去过吗{ASK}"],
        ),
        (
            "東京は日本の首都です。「大阪」も大きい。",
            ["東京は日本の首都です。", "「大阪」も大きい。"],
        ),
        ("दिल्ली भारत की राजधानी है। मुंबई बड़ा है।", ["दिल्ली भारत की राजधानी है।", "मुंबई बड़ा है।"]),
        (
            "서울은 한국의 수도이다. 부산은 항구 도시이다.",
            ["서울은 한국의 수도이다.", "부산은 항구 도시이다."],
        ),
        ("   ", []),
        ("no full stop at all", ["no full stop at all"]),
    ],
)
def test_sentence_spans_cut_sentences_in_several_scripts(text: str, sentences: list[str]) -> None:
    spans = sentence_spans(text)
    assert [text[start:end] for start, end in spans] == sentences
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))


@pytest.mark.parametrize("method", ["cosine", "maxsim"])
def test_the_best_sentence_wins_over_the_first_passage(reader: SentenceReader, method: str) -> None:
    reader = SentenceReader(device="cpu", method=method) if method != reader.method else reader
    answer = reader.read("What causes scurvy?", [DECOY, ANSWERING])
    # neither the top-ranked passage nor the first sentence of the answering one
    assert (answer.kind, answer.text) == ("sentence", SCURVY)
    [source] = answer.evidence
    assert (source.doc_id, source.passage_id, source.title) == ("d2", "d2#0", "Scurvy")
    assert source.text[source.start : source.end] == answer.text
    assert source.retrieval_score == 3.0
    similarities = reader.similarities("What causes scurvy?", [SCURVY, DECOY.text])
    assert answer.score == pytest.approx(similarities[0], abs=1e-5)
    assert similarities[0] > similarities[1]


def test_offsets_slice_every_script(reader: SentenceReader) -> None:
    text = "東京は日本の首都です。 Scurvy comes from too little vitamin C! 北京很大。"
    answer = reader.read("What does scurvy come from?", [text])
    source = answer.evidence[0]
    assert answer.text == "Scurvy comes from too little vitamin C!"
    assert source.text[source.start : source.end] == answer.text


def test_the_retrieval_weight_favours_better_ranked_passages() -> None:
    weighted = SentenceReader(device="cpu", retrieval_weight=10.0)
    answer = weighted.read("What causes scurvy?", [DECOY, ANSWERING])
    assert answer.evidence[0].doc_id == "d1"


def test_nothing_to_read_and_bad_settings(reader: SentenceReader) -> None:
    assert reader.read("What causes scurvy?", [" ", ""]).kind == "none"
    with pytest.raises(OdqaError, match="empty question"):
        reader.read("  ", [ANSWERING])
    with pytest.raises(OdqaError, match="method must be one of"):
        SentenceReader(method="bm25")


def test_make_reader_builds_it_without_a_model() -> None:
    assert isinstance(make_reader("sentence"), SentenceReader)
    with pytest.raises(OdqaError, match="'model' is required"):
        make_reader("extractive")
