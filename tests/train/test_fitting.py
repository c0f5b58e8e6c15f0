"""The one training loop: its schedule and precision rule, shared by retrievers and readers;
the readers' length-grouped batches and token-capped micro-batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from odqa.errors import OdqaError
from odqa.models import device
from odqa.train.examples import TrainingExample
from odqa.train.fitting import FineTuneConfig, epoch_batches, fit, micro_batches
from odqa.train.loop import StepLoop
from odqa.train.trainer import LOG_FILE, TrainConfig, Trainer

CPU = torch.device("cpu")


def test_grouped_batches_cover_every_item_once_with_similar_lengths() -> None:
    lengths = [int(length) for length in torch.randint(10, 400, (1000,)).tolist()]
    batches = epoch_batches(1000, 16, 0, 0, lengths)
    assert sorted(item for batch in batches for item in batch) == list(range(1000))
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    random = epoch_batches(1000, 16, 0, 0)
    random_spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in random]
    assert sum(spread) < sum(random_spread) / 4


def test_grouped_batches_are_seeded() -> None:
    lengths = list(range(300))
    first = epoch_batches(300, 8, 3, 0, lengths)
    again = epoch_batches(300, 8, 3, 0, lengths)
    assert first == again
    assert first != epoch_batches(300, 8, 4, 0, lengths)  # another seed
    assert first != epoch_batches(300, 8, 3, 1, lengths)  # another epoch


def test_micro_batches_stay_within_the_token_cap() -> None:
    lengths = [100, 300, 50, 384, 384, 20]
    runs = micro_batches(list(range(6)), lengths, 800)
    assert [item for run in runs for item in run] == list(range(6))
    assert all(len(run) * max(lengths[i] for i in run) <= 800 for run in runs)
    assert micro_batches([3], lengths, 100) == [[3]]  # one long item is never cut
    assert micro_batches([0, 1, 2], None, 10) == [[0, 1, 2]]


def test_micro_batches_give_the_whole_batch_gradient() -> None:
    """Training with a tight token cap matches training on whole batches."""
    features = torch.randn(40, 5)
    targets = torch.randn(40)

    def trained(max_tokens: int) -> torch.Tensor:
        torch.manual_seed(0)
        model = torch.nn.Linear(5, 1)

        def batch_loss(chosen: list[int]) -> torch.Tensor:
            return ((model(features[chosen]).squeeze(1) - targets[chosen]) ** 2).mean()

        config = FineTuneConfig(epochs=2, batch_size=8, learning_rate=0.1, precision="fp32")
        fit(
            model, 40, batch_loss, config, device=torch.device("cpu"), description="test",
            lengths=[3] * 40, max_tokens=max_tokens,
        )  # fmt: skip
        return model.weight.detach().clone()

    torch.manual_seed(0)
    untrained = torch.nn.Linear(5, 1).weight.detach()
    assert torch.allclose(trained(1000), trained(6), atol=1e-6)
    assert not torch.allclose(trained(1000), untrained, atol=1e-3)


class Matcher:
    """A one-weight stand-in for a retriever under training: score = w · (text starts with
    the query); it notes whether each scoring ran under bf16 autocast."""

    default_temperature = 1.0

    def __init__(self) -> None:
        self.weight = torch.nn.Linear(1, 1)
        self.autocast: list[bool] = []

    def modules(self) -> list[torch.nn.Module]:
        return [self.weight]

    def parameter_groups(self, learning_rate: float, head_learning_rate: float) -> list[dict]:
        return [{"params": list(self.weight.parameters()), "lr": learning_rate}]

    def score(self, queries, texts) -> torch.Tensor:
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        match = [[float(text.startswith(query)) for text in texts] for query in queries]
        return self.weight(torch.tensor(match).unsqueeze(-1)).squeeze(-1)


def retriever_run(tmp_path: Path, precision: str) -> tuple[Trainer, list[float]]:
    """A retriever trainer over 20 examples, batch 2, 2 epochs (20 steps); its rates."""
    examples = [TrainingExample(f"q{i}", (f"q{i} yes", f"no {i}")) for i in range(20)]
    config = TrainConfig(epochs=2, batch_size=2, learning_rate=1e-3, save_every=0)
    trainer = Trainer(
        Matcher(), examples, config, tmp_path / "work", device=CPU, precision=precision
    )
    trainer.run()
    log = [json.loads(line) for line in (tmp_path / "work" / LOG_FILE).read_text().splitlines()]
    return trainer, [entry["lr"] for entry in log]


def reader_run(precision: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[bool], list[float]]:
    """The readers' fit over 20 items, batch 2, 2 epochs (20 steps); autocast and rates."""
    model = torch.nn.Linear(1, 1)
    autocast: list[bool] = []
    rates: list[float] = []
    step = StepLoop.step

    def noting(self: StepLoop, parts) -> float:
        loss = step(self, parts)
        rates.append(self.learning_rate)
        return loss

    def batch_loss(chosen: list[int]) -> torch.Tensor:
        autocast.append(torch.is_autocast_enabled("cpu"))
        return model(torch.ones(len(chosen), 1)).float().pow(2).mean()

    monkeypatch.setattr(StepLoop, "step", noting)
    config = FineTuneConfig(epochs=2, batch_size=2, learning_rate=1e-3, precision=precision)
    fit(model, 20, batch_loss, config, device=CPU, description="test")
    monkeypatch.setattr(StepLoop, "step", step)
    return autocast, rates


def test_retrievers_and_readers_share_one_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same steps and warm-up share give the same learning rates in both trainers: linear
    warm-up over the first 10% of the steps (2 of 20), then linear decay to zero."""
    _, retriever_rates = retriever_run(tmp_path, "fp32")
    _, reader_rates = reader_run("fp32", monkeypatch)
    expected = [1e-3 * (k / 2 if k < 2 else (20 - k) / 18) for k in range(1, 21)]
    assert retriever_rates == pytest.approx(expected, abs=1e-12)
    assert reader_rates == pytest.approx(expected, abs=1e-12)
    assert retriever_rates == reader_rates


@pytest.mark.parametrize("native_bf16", [True, False])
def test_auto_precision_is_one_rule_in_both_trainers(
    native_bf16: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``auto`` is bf16 on CPUs with native bf16 and fp32 on others, retrievers and readers
    alike, as :func:`odqa.models.device.use_bf16` says; fp32 and bf16 are what they say."""
    monkeypatch.setattr(device, "cpu_has_fast_bf16", lambda: native_bf16)
    assert device.use_bf16(CPU, "auto") is native_bf16
    for precision, expected in (("auto", native_bf16), ("fp32", False), ("bf16", True)):
        trainer, _ = retriever_run(tmp_path / precision, precision)
        assert trainer.loop.bf16 is expected
        assert set(trainer.model.autocast) == {expected}
        autocast, _ = reader_run(precision, monkeypatch)
        assert set(autocast) == {expected}


def test_unknown_precision_is_refused_before_training() -> None:
    with pytest.raises(OdqaError, match="precision must be one of"):
        FineTuneConfig(precision="fp16")
    with pytest.raises(OdqaError, match="precision must be one of"):
        StepLoop([{"params": [torch.nn.Parameter(torch.zeros(1))]}], 1, device=CPU, precision="x")
