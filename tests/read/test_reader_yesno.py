"""The yes/no reader: BioASQ reading, class weights, training (full and LoRA), metrics, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from odqa.cli import app
from odqa.errors import InputError, OdqaError
from odqa.evaluate.classification import yesno_metrics
from odqa.read.answer import Evidence
from odqa.read.yesno import YesNoReader
from odqa.train.yesno import (
    YesNoQuestion,
    balanced_weights,
    read_yesno_questions,
    train_yesno,
)

TOY = [
    ("q0", "Is aspirin effective for headache?", ["Aspirin was confirmed effective."], "yes"),
    ("q1", "Is vitamin C effective for colds?", ["Vitamin C was shown ineffective."], "no"),
    ("q2", "Does exercise lower blood pressure?",
     ["Exercise was confirmed effective.", "Trials confirmed effective results."], "yes"),
    ("q3", "Does homeopathy cure asthma?", ["Homeopathy was shown ineffective."], "no"),
    ("q4", "Is metformin useful in diabetes?", ["Metformin was confirmed effective."], "yes"),
    ("q5", "Do magnets relieve arthritis?", ["Magnets were shown ineffective."], "no"),
]  # fmt: skip
FAST = {"epochs": 30, "batch_size": 4, "learning_rate": 1e-3, "precision": "fp32"}


def toy_questions(items=TOY) -> list[YesNoQuestion]:
    return [YesNoQuestion(qid, body, tuple(texts), label) for qid, body, texts, label in items]


def write_bioasq(path: Path, items=TOY, **changes: object) -> Path:
    """A BioASQ JSON file of ``items``; ``changes`` set fields of the first question."""
    questions = [
        {
            "id": qid,
            "type": "yesno",
            "body": body,
            "snippets": [{"document": "http://x/pubmed/1", "text": text} for text in texts],
            "exact_answer": label,
        }
        for qid, body, texts, label in items
    ]
    questions[0].update(changes)
    questions.append({"id": "f1", "type": "factoid", "body": "Which gene?", "exact_answer": []})
    path.write_text(json.dumps({"questions": questions}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("yesno") / "reader"
    train_yesno(toy_questions(), out, base=tiny_model, **FAST)
    return out


@pytest.fixture(scope="module")
def reader(trained: Path) -> YesNoReader:
    return YesNoReader(trained, device="cpu", precision="fp32")


def test_metrics_by_hand() -> None:
    predictions = ["yes", "yes", "no", "no", "yes"]
    labels = ["yes", "no", "no", "yes", "yes"]
    figures = yesno_metrics(predictions, labels)
    assert figures["accuracy"] == pytest.approx(3 / 5)
    assert figures["f1_yes"] == pytest.approx(2 / 3)  # tp 2, precision 2/3, recall 2/3
    assert figures["f1_no"] == pytest.approx(1 / 2)  # tp 1, precision 1/2, recall 1/2
    assert figures["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert figures["count"] == 5


def test_metrics_zero_division_and_the_all_yes_baseline() -> None:
    labels = ["yes"] * 66 + ["no"] * 36
    baseline = yesno_metrics(["yes"] * 102, labels)
    assert baseline["f1_no"] == 0.0  # "no" never predicted
    assert baseline["f1_yes"] == pytest.approx(2 * 66 / (2 * 66 + 36))
    assert baseline["macro_f1"] == pytest.approx(0.393, abs=1e-3)
    assert yesno_metrics(["no"], ["no"])["f1_yes"] == 0.0  # "yes" neither predicted nor gold
    empty = yesno_metrics([], [])
    assert empty == {"accuracy": 0.0, "f1_yes": 0.0, "f1_no": 0.0, "macro_f1": 0.0, "count": 0}
    with pytest.raises(OdqaError, match="'maybe'"):
        yesno_metrics(["maybe"], ["yes"])
    with pytest.raises(OdqaError, match="2 predictions for 1 labels"):
        yesno_metrics(["yes", "no"], ["yes"])


def test_class_weights_come_from_the_whole_training_set(tiny_model: Path, tmp_path: Path) -> None:
    assert balanced_weights(["yes", "yes", "yes", "no"]) == pytest.approx((2.0, 2 / 3))
    three_to_one = toy_questions([TOY[0], TOY[1], TOY[4], TOY[2]])  # 4 yes pairs, 1 no pair
    summary = train_yesno(three_to_one, tmp_path / "a", base=tiny_model, epochs=1, batch_size=1)
    assert summary["pairs"] == 5
    assert summary["class_weights"] == pytest.approx([5 / 2, 5 / 8])  # over pairs, not batches
    record = json.loads((tmp_path / "a" / "odqa_training.json").read_text())
    assert record["class_weights"] == summary["class_weights"]
    assert record["class_weights_rule"] == "auto"
    assert list(record) == [
        "base", "base_sha256", "epochs", "batch_size", "learning_rate", "max_length",
        "class_weights_rule", "lora_rank", "seed", "steps", "seconds", "questions", "pairs",
        "class_weights", "loss",
    ]  # fmt: skip
    assert (record["learning_rate"], record["lora_rank"]) == (3e-5, None)
    plain = train_yesno(three_to_one, tmp_path / "b", base=tiny_model, epochs=1, class_weights=None)
    assert plain["class_weights"] == [1.0, 1.0]
    given = train_yesno(three_to_one, tmp_path / "c", base=tiny_model, epochs=1,
                        class_weights=(3.0, 0.5))  # fmt: skip
    assert given["class_weights"] == [3.0, 0.5]
    with pytest.raises(OdqaError, match="positive"):
        train_yesno(three_to_one, tmp_path / "d", base=tiny_model, class_weights=(0.0, 1.0))
    with pytest.raises(OdqaError, match="both yes and no"):
        train_yesno(toy_questions(TOY[:1]), tmp_path / "e", base=tiny_model)
    assert not (tmp_path / "d").exists()


def test_training_learns_the_toy_set(trained: Path, reader: YesNoReader) -> None:
    answers = [reader.read(q.question, q.snippets) for q in toy_questions()]
    assert [answer.text for answer in answers] == [label for *_, label in TOY]
    assert all(answer.kind == "yesno" and answer.score > 0.5 for answer in answers)
    record = json.loads((trained / "odqa_training.json").read_text())
    assert record["loss"][-1] < record["loss"][0]


def test_answer_carries_its_evidence(reader: YesNoReader) -> None:
    passages = [
        Evidence("d1", "d1#0", "Aspirin was confirmed effective.", "Aspirin", 3.0),
        ("Trials confirmed effective results.", "d2", "d2#0", 1.0),
        "   ",
    ]
    answer = reader.read("Is aspirin effective?", passages)
    assert answer.text == "yes"
    assert {item.doc_id for item in answer.evidence} == {"d1", "d2"}  # the blank one is skipped
    assert next(e for e in answer.evidence if e.doc_id == "d1").title == "Aspirin"


def test_aggregation_is_the_mean_yes_probability(
    reader: YesNoReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "yes_probabilities", lambda question, texts: [0.9, 0.2, 0.3])
    answer = reader.read("q?", ["a", "b", "c"])
    assert (answer.text, answer.score) == ("no", pytest.approx(1 - 1.4 / 3))
    assert [item.text for item in answer.evidence] == ["b", "c", "a"]  # most "no" first
    monkeypatch.setattr(reader, "yes_probabilities", lambda question, texts: [0.5, 0.5])
    assert reader.read("q?", ["a", "b"]).text == "yes"  # 0.5 answers yes


def test_reader_refuses_empty_questions_and_missing_evidence(reader: YesNoReader) -> None:
    with pytest.raises(OdqaError, match="empty question"):
        reader.read("  ", ["Aspirin was confirmed effective."])
    for passages in ([], ["", "  "]):
        with pytest.raises(OdqaError, match="needs evidence"):
            reader.read("Is aspirin effective?", passages)


def test_an_encoder_without_a_trained_head_is_refused(tiny_model: Path) -> None:
    with pytest.raises(OdqaError, match="not a trained yes/no reader"):
        YesNoReader(tiny_model)


def test_lora_trains_and_saves_a_plain_model(
    tiny_model: Path, trained: Path, tmp_path: Path
) -> None:
    out = tmp_path / "lora"
    summary = train_yesno(toy_questions(), out, base=tiny_model, lora=True, lora_rank=4,
                          epochs=2, batch_size=4)  # fmt: skip
    assert summary["steps"] == 4
    weights = load_file(str(out / "model.safetensors"))
    assert not [name for name in weights if "lora" in name or "modules_to_save" in name]
    base = load_file(str(tiny_model / "model.safetensors"))
    query = "encoder.layer.0.attention.self.query.weight"
    assert not weights[f"bert.{query}"].equal(base[query])  # the adapter was merged in
    key = "encoder.layer.0.attention.self.key.weight"
    assert weights[f"bert.{key}"].equal(base[key])  # frozen, no adapter
    answer = YesNoReader(out, device="cpu").read("Is it?", ["It was confirmed effective."])
    assert answer.text in ("yes", "no")


def test_output_folder_is_refused_unless_overwrite(trained: Path, tiny_model: Path) -> None:
    with pytest.raises(OdqaError, match="already exists"):
        train_yesno(toy_questions(), trained, base=tiny_model, epochs=1)


def test_reads_only_yesno_questions(tmp_path: Path) -> None:
    path = write_bioasq(tmp_path / "b.json", exact_answer=" Yes ")
    questions = read_yesno_questions([path])
    assert [q.id for q in questions] == [qid for qid, *_ in TOY]
    assert questions[0] == YesNoQuestion("q0", TOY[0][1], tuple(TOY[0][2]), "yes")
    assert questions[2].snippets == tuple(TOY[2][2])


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"snippets": []}, "questions[0].snippets", "needs evidence"),
        ({"snippets": [{"text": "  "}]}, "questions[0].snippets", "needs evidence"),
        ({"exact_answer": "maybe"}, "questions[0].exact_answer", "expected 'yes' or 'no'"),
        ({"exact_answer": ["yes"]}, "questions[0].exact_answer", r"got \['yes'\]"),
        ({"body": " "}, "questions[0].body", "empty question"),
    ],
)
def test_bad_questions_name_file_id_and_field(
    tmp_path: Path, changes: dict, field: str, message: str
) -> None:
    path = write_bioasq(tmp_path / "bad.json", **changes)
    with pytest.raises(InputError, match=message) as caught:
        read_yesno_questions(path)
    assert (caught.value.path, caught.value.field) == (str(path), field)
    assert "'q0'" in str(caught.value)


def test_a_question_without_an_answer_is_an_error(tmp_path: Path) -> None:
    path = write_bioasq(tmp_path / "bad.json")
    data = json.loads(path.read_text())
    del data["questions"][1]["exact_answer"]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="'q1': expected 'yes' or 'no', got nothing") as caught:
        read_yesno_questions(path)
    assert caught.value.field == "questions[1].exact_answer"


def test_a_question_without_a_snippets_field_is_an_error(tmp_path: Path) -> None:
    path = write_bioasq(tmp_path / "bad.json")
    data = json.loads(path.read_text())
    del data["questions"][1]["snippets"]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="'q1' has no snippet") as caught:
        read_yesno_questions(path)
    assert caught.value.field == "questions[1].snippets"


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    first, second = write_bioasq(tmp_path / "a.json"), write_bioasq(tmp_path / "b.json")
    with pytest.raises(InputError, match="duplicate id 'q0'") as caught:
        read_yesno_questions([first, second])
    assert caught.value.path == str(second)


def test_cli_trains_and_reports(tiny_model: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    data = write_bioasq(tmp_path / "train.json")
    out = tmp_path / "cli-reader"
    args = ["train", "yesno", str(data), "--out", str(out), "--base", str(tiny_model)]
    args += ["--epochs", "1"]
    result = runner.invoke(app, [*args, "--class-weights", "1,2"])
    assert result.exit_code == 0, result.output
    assert "trained on 6 yes/no questions (3 yes, 3 no; 7 question-snippet pairs" in result.output
    assert "class weights no 1.000 yes 2.000" in result.output
    assert YesNoReader(out).read("Is it?", ["It was confirmed effective."]).kind == "yesno"
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(app, [*args, "--overwrite", "--class-weights", "1;2"])
    assert bad.exit_code == 2 and "--class-weights takes auto" in bad.output
    broken = write_bioasq(tmp_path / "broken.json", snippets=[])
    failed = runner.invoke(
        app, ["train", "yesno", str(broken), "--out", str(tmp_path / "x"), "--epochs", "1"]
    )
    assert failed.exit_code == 2
    assert "field 'questions[0].snippets'" in failed.output and "'q0'" in failed.output
    assert "Example: odqa train yesno" in runner.invoke(app, ["train", "yesno", "--help"]).output
