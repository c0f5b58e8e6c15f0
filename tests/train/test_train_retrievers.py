"""Training ColBERT and dense retrievers: losses, checkpoints, resume, distillation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from odqa.errors import OdqaError
from odqa.models.colbert import ColBERTEncoder
from odqa.models.dense import DenseEncoder
from odqa.train.examples import TrainingExample
from odqa.train.losses import contrastive_loss, distillation_loss
from odqa.train.run import train_retriever
from odqa.train.trainer import TrainConfig, _excluded

FACTS = [
    ("what causes scurvy", "Scurvy is caused by a lack of vitamin C in the diet."),
    ("what causes rickets", "Rickets comes from too little vitamin D and sunlight."),
    ("what is beriberi", "Beriberi follows a deficiency of thiamine, vitamin B1."),
    ("what do kinases do", "Kinases phosphorylate proteins inside living cells."),
    ("what controls mitosis", "Cyclins control the cell division cycle of mitosis."),
    ("how deep is the ocean", "The ocean is deep and blue, eleven kilometres at most."),
]


def examples(negatives: int = 1) -> list[TrainingExample]:
    texts = [text for _, text in FACTS]
    return [
        TrainingExample(query, (text, *[texts[(i + j + 1) % len(texts)] for j in range(negatives)]))
        for i, (query, text) in enumerate(FACTS)
    ]


def quick(**overrides) -> TrainConfig:
    settings = {"epochs": 2, "batch_size": 3, "save_every": 0, "learning_rate": 1e-3}
    return TrainConfig(**{**settings, **overrides})


def test_contrastive_loss_ignores_excluded_columns() -> None:
    scores = torch.tensor([[2.0, 5.0, 0.0]])
    plain = contrastive_loss(scores, torch.tensor([0]), torch.zeros(1, 3, dtype=torch.bool), 1.0)
    excluded = torch.tensor([[False, True, False]])
    masked = contrastive_loss(scores, torch.tensor([0]), excluded, 1.0)
    expected = -torch.log_softmax(torch.tensor([2.0, 0.0]), dim=0)[0]
    assert masked.item() == pytest.approx(expected.item(), abs=1e-6)
    assert plain.item() > masked.item()


def test_distillation_loss_is_zero_when_student_matches_teacher() -> None:
    teacher = torch.tensor([[3.0, 1.0, 0.5]])
    assert distillation_loss(teacher.clone(), teacher).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(teacher.flip(1), teacher).item() > 0.1


def test_other_positives_of_the_same_query_are_not_negatives() -> None:
    batch = [
        TrainingExample("q", ("a", "x")),
        TrainingExample("q", ("b", "y")),
        TrainingExample("r", ("a", "z")),
    ]
    groups = [example.texts for example in batch]
    texts = [text for group in groups for text in group]
    excluded = _excluded(batch, groups, texts, torch.tensor([0, 2, 4]))
    # "q" has positives a and b: for row 0, b (column 2) and the copy of a (column 4) are
    # excluded; for row 1, both copies of a (columns 0 and 4)
    assert excluded[0].nonzero().flatten().tolist() == [2, 4]
    assert excluded[1].nonzero().flatten().tolist() == [0, 4]
    assert excluded[2].nonzero().flatten().tolist() == [0]


def test_colbert_training_writes_a_stanford_checkpoint(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "colbert"
    summary = train_retriever(
        "colbert", examples(), out, config=quick(), base=tiny_model, dim=16, device="cpu"
    )
    assert summary["steps"] == 4 and summary["loss"] == "contrastive"
    assert json.loads((out / "config.json").read_text())["architectures"] == ["HF_ColBERT"]
    metadata = json.loads((out / "artifact.metadata").read_text())
    assert metadata["dim"] == 16 and metadata["query_token_id"] == "[unused0]"
    with safe_open(str(out / "model.safetensors"), framework="pt") as handle:
        keys = set(handle.keys())
    assert "linear.weight" in keys and all(
        k == "linear.weight" or k.startswith("bert.") for k in keys
    )
    encoder = ColBERTEncoder(out, device="cpu")
    assert encoder.layout == "stanford" and encoder.dim == 16
    vectors, doclens = encoder.encode_documents(["vitamin C prevents scurvy"])
    assert vectors.shape[1] == 16 and int(doclens[0]) > 0
    assert not (tmp_path / "colbert.partial").exists()
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2, 3, 4]


def test_colbert_projection_starts_from_principal_directions(
    tiny_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "colbert"
    config = quick(epochs=0.01, learning_rate=0.0, head_learning_rate=0.0, warmup=0.0)
    train_retriever("colbert", examples(), out, config=config, base=tiny_model, dim=8, device="cpu")
    with safe_open(str(out / "model.safetensors"), framework="pt") as handle:
        weight = handle.get_tensor("linear.weight")
    assert torch.allclose(weight @ weight.T, torch.eye(8), atol=1e-4)  # orthonormal rows


@pytest.mark.slow
def test_training_lowers_the_loss(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "dense"
    config = quick(epochs=15, batch_size=6, learning_rate=3e-3, warmup=0.0)
    summary = train_retriever("dense", examples(2), out, config=config, base=tiny_model)
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    first, last = log[0]["loss"], log[-1]["loss"]
    assert summary["steps"] == 15 and last < 0.5 * first


def test_dense_checkpoint_records_its_pooling(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "dense"
    train_retriever("dense", examples(), out, config=quick(), base=tiny_model, device="cpu")
    trained = DenseEncoder(out, device="cpu")
    assert (trained.pooling, trained.normalize) == ("mean", True)
    assert json.loads((out / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"]
    before = DenseEncoder(tiny_model, device="cpu").encode(["scurvy"])
    after = trained.encode(["scurvy"])
    assert not torch.allclose(torch.from_numpy(before), torch.from_numpy(after))


def test_distillation_is_used_when_every_example_has_scores(tiny_model, tmp_path) -> None:
    scored = [
        TrainingExample(e.query, e.texts, scores=(5.0, 1.0, 0.5)) for e in examples(negatives=2)
    ]
    summary = train_retriever("dense", scored, tmp_path / "d", config=quick(), base=tiny_model)
    assert summary["loss"] == "distillation"
    with pytest.raises(OdqaError, match="teacher scores"):
        train_retriever(
            "dense", examples(), tmp_path / "e", config=quick(loss="distillation"), base=tiny_model
        )


def test_existing_output_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    with pytest.raises(OdqaError, match="--overwrite"):
        train_retriever("dense", examples(), out, config=quick(), base=tiny_model)


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_an_interrupted_run_resumes_on_the_same_schedule(tiny_model: Path, tmp_path: Path) -> None:
    config = quick(epochs=2, save_every=2)
    whole = tmp_path / "whole"
    train_retriever("colbert", examples(), whole, config=config, base=tiny_model, dim=8)

    def stop_at_two(step: int) -> None:
        if step == 2:
            raise Interrupt

    resumed = tmp_path / "resumed"
    with pytest.raises(Interrupt):
        train_retriever(
            "colbert",
            examples(),
            resumed,
            config=config,
            base=tiny_model,
            dim=8,
            on_step=stop_at_two,
        )
    assert not resumed.exists() and (tmp_path / "resumed.partial" / "state").is_dir()
    with pytest.raises(OdqaError, match="other settings"):
        train_retriever(
            "colbert", examples(), resumed, config=quick(epochs=3, save_every=2), base=tiny_model
        )
    with pytest.raises(OdqaError, match="other settings"):  # the lengths shape training too
        train_retriever(
            "colbert", examples(), resumed, config=config, base=tiny_model, dim=8, doc_maxlen=64
        )
    summary = train_retriever("colbert", examples(), resumed, config=config, base=tiny_model, dim=8)
    assert summary["resumed_from_step"] == 2
    with (
        safe_open(str(whole / "model.safetensors"), framework="pt") as a,
        safe_open(str(resumed / "model.safetensors"), framework="pt") as b,
    ):
        for key in list(a.keys()):
            assert torch.allclose(a.get_tensor(key), b.get_tensor(key), atol=1e-6), key
