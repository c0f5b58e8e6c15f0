"""The extractive reader on a model whose answers are set by hand, and reader fine-tuning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertForQuestionAnswering

from helpers import SCURVY, TOY, copy_tokenizer, save_hand_set_reader, write_squad
from odqa.errors import InputError, OdqaError
from odqa.read.answer import Evidence
from odqa.read.extractive import ExtractiveReader, load_qa_model
from odqa.train.reader import (
    ReaderTrainConfig,
    TrainingQuestion,
    read_training_questions,
    spread_questions,
    train_reader,
    training_windows,
    window_loss,
)


@pytest.fixture(scope="module")
def hand_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_hand_set_reader(tmp_path_factory.mktemp("hand-reader"))


@pytest.fixture(scope="module")
def reader(hand_model: Path) -> ExtractiveReader:
    return ExtractiveReader(hand_model, device="cpu")


def test_reads_the_exact_span_with_offsets(reader: ExtractiveReader) -> None:
    passage = Evidence("d1", "d1#0", SCURVY, "Scurvy", retrieval_score=2.5)
    answer = reader.read("which vitamin prevents it?", [passage])  # question tokens never count
    assert answer.kind == "span"
    assert answer.text == "vitamin C"
    [evidence] = answer.evidence
    assert (evidence.start, evidence.end) == (SCURVY.index("vitamin C"), SCURVY.index(" in the"))
    assert evidence.text[evidence.start : evidence.end] == answer.text
    assert (evidence.doc_id, evidence.passage_id, evidence.title) == ("d1", "d1#0", "Scurvy")
    assert evidence.retrieval_score == 2.5
    assert 0.0 < answer.score <= 1.0


def test_picks_the_passage_that_holds_the_answer(reader: ExtractiveReader) -> None:
    passages = [
        ("Rickets comes from too little vitamin D.", "d2", "d2#0", 3.0),
        "Kinases phosphorylate proteins.",
        Evidence("d1", "d1#0", SCURVY),
    ]
    answer = reader.read("what causes scurvy?", passages)
    assert answer.text == "vitamin C"
    assert answer.evidence[0].doc_id == "d1"


def test_long_passages_are_read_in_windows(hand_model: Path) -> None:
    windowed = ExtractiveReader(hand_model, device="cpu", max_length=32, doc_stride=8)
    text = "Filler words go here. " * 30 + SCURVY
    answer = windowed.read("which vitamin?", [text])
    assert answer.text == "vitamin C"
    assert answer.evidence[0].start == text.index("vitamin C")


def test_answers_longer_than_the_limit_are_not_candidates(hand_model: Path) -> None:
    text = "vitamin and many other words then C"
    short = ExtractiveReader(hand_model, device="cpu", max_answer_tokens=3)
    assert ExtractiveReader(hand_model, device="cpu").read("q?", [text]).text == text
    answer = short.read("q?", [text])
    assert answer.text != text
    assert len(answer.text.split()) <= 3


def test_retrieval_score_breaks_even_readings(hand_model: Path) -> None:
    passages = [("Lack of vitamin C.", "a", "a#0", 1.0), ("No vitamin C here.", "b", "b#0", 9.0)]
    mixed = ExtractiveReader(hand_model, device="cpu", retrieval_weight=1.0)
    assert mixed.read("q?", passages).evidence[0].doc_id == "b"
    ignored = ExtractiveReader(hand_model, device="cpu", retrieval_weight=0.0)
    assert ignored.read("q?", passages).evidence[0].doc_id == "a"  # tie: earlier passage


def test_no_answer_below_the_threshold(hand_model: Path, reader: ExtractiveReader) -> None:
    strict = ExtractiveReader(hand_model, device="cpu", no_answer_threshold=0.99)
    answer = strict.read("which vitamin?", [SCURVY])
    assert (answer.kind, answer.text, answer.evidence) == ("none", "", ())
    assert answer.score == pytest.approx(reader.read("which vitamin?", [SCURVY]).score)
    assert reader.read("q?", ["", "   "]).kind == "none"
    assert reader.read("q?", []).kind == "none"


def test_empty_question_is_an_error(reader: ExtractiveReader) -> None:
    with pytest.raises(OdqaError, match="empty question"):
        reader.read("  ", [SCURVY])


def test_long_question_is_cut_with_a_warning(hand_model: Path) -> None:
    short = ExtractiveReader(hand_model, device="cpu", max_length=32)
    with pytest.warns(UserWarning, match="only its first 16"):
        answer = short.read("why " * 100, [SCURVY])
    assert answer.text == "vitamin C"


def test_an_encoder_without_a_trained_head_is_refused(tiny_model: Path) -> None:
    with pytest.raises(OdqaError, match="not a trained reader"):
        ExtractiveReader(tiny_model)


def test_training_windows_point_at_the_answer_or_cls(hand_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(hand_model))
    context = "Filler words go here. " * 12 + SCURVY
    start = context.index("vitamin C")
    item = TrainingQuestion("q", "which vitamin?", context, start, start + len("vitamin C"))
    windows = training_windows(tokenizer, [item], max_length=32, doc_stride=8)
    assert len(windows) > 3
    holding = [w for w in windows if w["start_positions"] != 0]
    assert holding, "some window holds the answer"
    for window in holding:
        tokens = window["input_ids"][window["start_positions"] : window["end_positions"] + 1]
        assert tokenizer.decode(tokens) == "vitamin c"
    assert all(w["end_positions"] == 0 for w in windows if w["start_positions"] == 0)


def test_misplaced_answer_names_file_and_question(tmp_path: Path) -> None:
    bad = [("Scurvy", SCURVY, "What causes scurvy?", "vitamin C")]
    path = write_squad(tmp_path / "bad.json", bad)
    data = json.loads(path.read_text())
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 3
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="'q0'") as caught:
        read_training_questions(path)
    assert caught.value.path == str(path)
    assert caught.value.field == "data[0].paragraphs[0].qas[0].answers[0].answer_start"


def test_articles_pick_training_questions(tmp_path: Path) -> None:
    path = write_squad(tmp_path / "toy.json")
    questions, skipped = read_training_questions(path, range(1, 3))
    assert [question.id for question in questions] == ["q1", "q2"]
    assert skipped == 0
    with pytest.raises(InputError, match="no answered questions"):
        read_training_questions(path, range(5, 6))


@pytest.mark.slow
def test_trained_reader_extracts_the_toy_answers(tmp_path: Path, tiny_model: Path) -> None:
    squad = write_squad(tmp_path / "toy.json")
    out = tmp_path / "reader"
    summary = train_reader(
        squad,
        out,
        base=tiny_model,
        epochs=30,
        batch_size=3,
        learning_rate=3e-3,
        max_length=64,
        doc_stride=16,
        eval_json=squad,
        device="cpu",
    )
    assert (summary["steps"], summary["examples"], summary["windows"]) == (30, 3, 3)
    assert summary["loss"][-1] < summary["loss"][0] / 10
    assert summary["eval"] == {"em": 100.0, "f1": 100.0, "count": 3}
    record = json.loads((out / "odqa_training.json").read_text())
    assert record["epochs"] == 30 and record["base"] == str(tiny_model.resolve())
    trained = ExtractiveReader(out, device="cpu", max_length=64)
    for _, context, question, answer in TOY:
        assert trained.read(question, [context]).text == answer
    with pytest.raises(OdqaError, match="already exists"):
        train_reader(squad, out, base=tiny_model, epochs=1)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".reader")]


def test_training_passes_stay_small_enough_for_a_laptop(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step of the default 8 windows of up to 384 tokens runs as forward passes of at most
    768 tokens (8 x 384 at once held 3 GB training MiniLM), padded to a multiple of 64 (a
    shape for every length grew the memory step after step); the step still sees all 8."""
    import odqa.train.reader as reader_training

    filler = " ".join(["word"] * 340)  # one window of about 350 tokens a question
    items = [(f"T{n}", f"{filler} The answer is vitamin C.", f"Question {n}?", "vitamin C")
             for n in range(8)]  # fmt: skip
    passes: list[tuple[int, int]] = []

    def watched(folder: Path, **options):
        tokenizer, model = load_qa_model(folder, **options)
        model.register_forward_pre_hook(
            lambda _, args, kwargs: passes.append(tuple(kwargs["input_ids"].shape)),
            with_kwargs=True,
        )
        return tokenizer, model

    monkeypatch.setattr(reader_training, "load_qa_model", watched)
    summary = train_reader(
        write_squad(tmp_path / "long.json", items), tmp_path / "reader", base=tiny_model,
        answer_windows_only=True, device="cpu",
    )  # fmt: skip
    assert summary["steps"] == 1 and summary["windows"] == 8
    assert sum(rows for rows, _ in passes) == 8 and max(length for _, length in passes) > 300
    assert max(rows * length for rows, length in passes) <= 768
    assert all(length % 64 == 0 for _, length in passes)  # few shapes: few cached kernels


def test_padding_never_changes_the_training_loss(random_reader: Path) -> None:
    """Batches are padded (to a multiple of 64 tokens); padding must not be an answer the
    loss weighs, or the wider the padding the more the reader learns about nothing."""
    tokenizer, model = load_qa_model(random_reader)
    model.eval()
    questions = [
        TrainingQuestion("a", "What causes scurvy?", SCURVY, 0, 0),
        TrainingQuestion("b", "What prevents it?", "Vitamin C prevents scurvy.", 0, 9),
    ]
    windows = training_windows(tokenizer, questions, 64, 16)
    longest = max(len(window["input_ids"]) for window in windows)
    losses = []
    for width in (longest, longest + 64):
        inputs = tokenizer.pad(windows, padding="max_length", max_length=width, return_tensors="pt")
        with torch.no_grad():
            losses.append(window_loss(model, dict(inputs)).item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_the_command_line_trains_with_the_configs_defaults() -> None:
    import inspect

    from odqa.cli.train import train_reader_command

    defaults = ReaderTrainConfig()
    for name, parameter in inspect.signature(train_reader_command).parameters.items():
        if hasattr(defaults, name) and name not in ("device",):
            assert parameter.default == getattr(defaults, name), name


def test_a_config_object_or_keywords_train_alike(tmp_path: Path, tiny_model: Path) -> None:
    squad = write_squad(tmp_path / "toy.json")
    config = ReaderTrainConfig(epochs=1, batch_size=3, max_length=64, doc_stride=16)
    by_config = train_reader(squad, tmp_path / "a", config, base=tiny_model)
    by_keywords = train_reader(
        squad, tmp_path / "b", base=tiny_model, epochs=1, batch_size=3, max_length=64,
        doc_stride=16,
    )  # fmt: skip
    assert by_config["loss"] == by_keywords["loss"]
    record = json.loads((tmp_path / "a" / "odqa_training.json").read_text())
    assert list(record) == [
        "base", "base_sha256", "squad", "squad_sha256", "articles", "epochs", "batch_size",
        "learning_rate", "max_length", "doc_stride", "max_questions", "answer_windows_only",
        "seed", "steps", "seconds", "examples", "windows", "skipped", "loss",
    ]  # fmt: skip
    assert (record["max_length"], record["learning_rate"], record["articles"]) == (64, 2e-4, None)
    with pytest.raises(TypeError):
        train_reader(squad, tmp_path / "c", base=tiny_model, epoch=1)
    with pytest.raises(OdqaError, match="precision"):
        ReaderTrainConfig(precision="half")


@pytest.fixture(scope="module")
def random_reader(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """The tiny BERT with a random question-answering head: its logits depend on every token."""
    folder = tmp_path_factory.mktemp("random-reader")
    torch.manual_seed(1)
    BertForQuestionAnswering.from_pretrained(str(tiny_model)).save_pretrained(folder)
    copy_tokenizer(folder)
    return folder


def test_length_batches_read_as_one_window_at_a_time(random_reader: Path) -> None:
    texts = [
        "Scurvy. " * 3,
        "Rickets comes from too little vitamin D and sunlight, " * 8,
        "Thiamine deficiency causes beriberi in people who eat polished rice.",
        "Kinases phosphorylate proteins. " * 5,
    ]
    settings = {"device": "cpu", "precision": "fp32", "max_length": 48, "doc_stride": 8}
    alone = ExtractiveReader(random_reader, batch_size=1, **settings)
    batched = ExtractiveReader(random_reader, batch_size=3, **settings)
    one, other = (reader.read("what causes rickets?", texts) for reader in (alone, batched))
    assert (one.text, one.evidence[0].start) == (other.text, other.evidence[0].start)
    assert one.score == pytest.approx(other.score, rel=1e-4)
    # a reader asked again with more passages reads only the new ones, and answers alike
    cached = ExtractiveReader(random_reader, batch_size=1, **settings)
    cached.read("what causes rickets?", texts[:2])
    assert cached.read("what causes rickets?", texts) == one


def test_spread_questions_take_every_paragraph_first() -> None:
    questions = [
        TrainingQuestion(f"{paragraph}{turn}", "q?", f"context {paragraph}", 0, 1)
        for paragraph in "abc"
        for turn in range(3 if paragraph == "a" else 1)
    ]
    assert [item.id for item in spread_questions(questions, 4)] == ["a0", "b0", "c0", "a1"]
    assert spread_questions(questions, None) == questions
    with pytest.raises(OdqaError, match="max_questions"):
        ReaderTrainConfig(max_questions=0)


def test_answer_windows_only_leave_out_the_windows_without_it(tiny_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    text = "Filler words go here. " * 20 + SCURVY
    item = TrainingQuestion("q", "which vitamin?", text, text.index("vitamin C"), text.index(" in"))
    every = training_windows(tokenizer, [item], 32, 8)
    answering = training_windows(tokenizer, [item], 32, 8, answer_windows_only=True)
    assert len(every) > len(answering) >= 1
    assert all(window["start_positions"] > 0 for window in answering)
    assert answering == [window for window in every if window["start_positions"] > 0]


def test_reuse_keeps_a_reader_trained_on_the_same_data(tmp_path: Path, tiny_model: Path) -> None:
    squad = write_squad(tmp_path / "toy.json")
    out = tmp_path / "reader"
    settings = {"base": tiny_model, "epochs": 1, "batch_size": 3, "max_length": 64}
    first = train_reader(squad, out, **settings)
    weights = (out / "model.safetensors").stat().st_mtime_ns
    kept = train_reader(squad, out, reuse=True, **settings)
    assert kept["reused"] and kept["steps"] == first["steps"]
    assert (out / "model.safetensors").stat().st_mtime_ns == weights
    # other settings, or other data under the same name: trained again
    assert "reused" not in train_reader(
        squad, out, reuse=True, overwrite=True, **{**settings, "epochs": 2}
    )
    write_squad(squad, TOY[:2])
    assert "reused" not in train_reader(squad, out, reuse=True, overwrite=True, **settings)
