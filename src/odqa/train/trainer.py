"""The retriever trainer: contrastive or distillation training of a retriever, resumable.

Each optimizer step runs on :class:`~odqa.train.loop.StepLoop`, the loop the readers use too
(AdamW, linear warm-up then linear decay, clipping, bf16 autocast by the one precision rule:
bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere). What is the trainer's own: gradient
accumulation, a dev evaluation through odqa's own metrics, and a checkpoint every
``save_every`` optimizer steps. Batches follow a seeded permutation per epoch, so a resumed run
replays exactly the schedule it was interrupted in.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from odqa.errors import OdqaError
from odqa.fs import atomic_file
from odqa.train.examples import TrainingExample
from odqa.train.loop import StepLoop, seeded_order
from odqa.train.losses import contrastive_loss, distillation_loss
from odqa.train.retrievers import TrainableRetriever

LOSSES = ("auto", "contrastive", "distillation")
STATE_FILE = "trainer_state.pt"
LOG_FILE = "training_log.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    """How to train; every field is recorded with the checkpoint and must match on resume."""

    epochs: float = 1.0
    batch_size: int = 32
    accumulation: int = 1
    learning_rate: float = 2e-5
    head_learning_rate: float = 1e-3
    warmup: float = 0.1
    max_grad_norm: float = 1.0
    temperature: float | None = None
    distillation_temperature: float = 1.0
    loss: str = "auto"
    max_negatives: int | None = None
    save_every: int = 100
    eval_every: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise OdqaError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.batch_size < 1 or self.accumulation < 1 or self.epochs <= 0:
            raise OdqaError("batch_size and accumulation must be >= 1 and epochs > 0")
        if not 0 <= self.warmup < 1:
            raise OdqaError(f"warmup is a fraction of the steps in [0, 1), got {self.warmup}")


DevEvaluation = Callable[[TrainableRetriever], dict[str, float]]
StepHook = Callable[[int], None]


class Trainer:
    """Trains ``model`` on ``examples``; ``work`` holds the resumable state and the log."""

    def __init__(
        self,
        model: TrainableRetriever,
        examples: Sequence[TrainingExample],
        config: TrainConfig,
        work: Path,
        *,
        device: torch.device,
        precision: str = "auto",
        evaluate: DevEvaluation | None = None,
        on_step: StepHook | None = None,
    ) -> None:
        if not examples:
            raise OdqaError("no training examples")
        self.model, self.examples, self.config, self.work = model, list(examples), config, work
        self.evaluate, self.on_step = evaluate, on_step
        self.distill = self._uses_distillation()
        self.temperature = config.temperature or model.default_temperature
        per_epoch = math.ceil(len(self.examples) / (config.batch_size * config.accumulation))
        self.steps_per_epoch = per_epoch
        self.total_steps = max(1, math.ceil(per_epoch * config.epochs))
        self.loop = StepLoop(
            model.parameter_groups(config.learning_rate, config.head_learning_rate),
            self.total_steps,
            device=device,
            precision=precision,
            warmup=config.warmup,
            max_grad_norm=config.max_grad_norm,
        )
        self.step = 0

    def run(self, show_progress: bool = False) -> dict:
        """Train to the end (resuming from ``work`` when it holds a state); returns a summary."""
        self.work.mkdir(parents=True, exist_ok=True)
        resumed_from = self._resume()
        if resumed_from is None:
            torch.manual_seed(self.config.seed)  # dropout; a resumed run restores the RNG
        for module in self.model.modules():
            module.train()
        started, trained = time.perf_counter(), 0
        last_dev: dict[str, float] = {}
        if resumed_from is None and self.evaluate is not None:
            self._log({"step": 0, "dev": self._dev()})
        with self.loop.progress("training", show_progress, done=self.step):
            while self.step < self.total_steps:
                dev = self._train_step()
                last_dev = last_dev if dev is None else dev
                trained += self.config.batch_size * self.config.accumulation
        seconds = time.perf_counter() - started
        if self.evaluate is not None and not last_dev:
            last_dev = self._dev()
            self._log({"step": self.step, "dev": last_dev})
        return {
            "steps": self.total_steps,
            "resumed_from_step": resumed_from,
            "examples_seen": trained,
            "seconds": round(seconds, 1),
            "examples_per_second": round(trained / seconds, 2) if seconds else None,
            "loss": "distillation" if self.distill else "contrastive",
            "dev": last_dev,
        }

    def _train_step(self) -> dict[str, float] | None:
        """One optimizer step, logged, evaluated and saved when due; the dev figures if
        evaluated."""
        batches = self._batches_of(self.step)
        count = len(batches)
        loss = self.loop.step([lambda batch=batch: self._loss(batch) / count for batch in batches])
        self.step += 1
        entry: dict = {"step": self.step, "loss": loss, "lr": self.loop.learning_rate}
        if self._due(self.config.eval_every or self.steps_per_epoch):
            entry["dev"] = self._dev()
        self._log(entry)
        if self._due(self.config.save_every):
            self._save_state()
        if self.on_step is not None:
            self.on_step(self.step)
        return entry.get("dev")

    def _due(self, every: int) -> bool:
        return every > 0 and (self.step % every == 0 or self.step == self.total_steps)

    def _batches_of(self, step: int) -> list[list[TrainingExample]]:
        """The micro-batches of optimizer step ``step``: from a seeded permutation per epoch."""
        size = self.config.batch_size
        per_step = size * self.config.accumulation
        position = step * per_step
        batches = []
        for micro in range(self.config.accumulation):
            start = position + micro * size
            epoch, offset = divmod(start, self.steps_per_epoch * per_step)
            order = seeded_order(len(self.examples), self.config.seed, epoch)
            batch = [self.examples[i] for i in order[offset : offset + size]]
            if batch:
                batches.append(batch)
        return batches

    def _loss(self, batch: list[TrainingExample]) -> torch.Tensor:
        limit = self.config.max_negatives
        texts_per_example = [
            example.texts if limit is None else example.texts[: 1 + limit] for example in batch
        ]
        texts = [text for group in texts_per_example for text in group]
        scores = self.model.score([example.query for example in batch], texts).float()
        starts = torch.tensor([0, *_cumulative(len(g) for g in texts_per_example)][:-1])
        if self.distill:
            return self._distillation(scores, batch, texts_per_example, starts)
        excluded = _excluded(batch, texts_per_example, texts, starts).to(scores.device)
        return contrastive_loss(scores, starts.to(scores.device), excluded, self.temperature)

    def _distillation(self, scores, batch, texts_per_example, starts) -> torch.Tensor:
        width = max(len(group) for group in texts_per_example)
        student = scores.new_full((len(batch), width), -1e4)
        teacher = scores.new_full((len(batch), width), -1e4)
        for row, (example, group) in enumerate(zip(batch, texts_per_example, strict=True)):
            count = len(group)
            first = int(starts[row])
            student[row, :count] = scores[row, first : first + count]
            teacher[row, :count] = torch.tensor(example.scores[:count]) / (
                self.config.distillation_temperature
            )
        return distillation_loss(student, teacher)

    def _uses_distillation(self) -> bool:
        with_scores = sum(example.scores is not None for example in self.examples)
        if self.config.loss == "distillation" and with_scores < len(self.examples):
            raise OdqaError(
                f"distillation needs teacher scores on every example; "
                f"{len(self.examples) - with_scores} of {len(self.examples)} have none"
            )
        if self.config.loss == "auto":
            return with_scores == len(self.examples)
        return self.config.loss == "distillation"

    def _dev(self) -> dict[str, float]:
        if self.evaluate is None:
            return {}
        for module in self.model.modules():
            module.eval()
        try:
            with self.loop.autocast():
                return self.evaluate(self.model)
        finally:
            for module in self.model.modules():
                module.train()

    def _log(self, entry: dict) -> None:
        with (self.work / LOG_FILE).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")

    def _save_state(self) -> None:
        state = {
            "step": self.step,
            "config": asdict(self.config),
            "examples": len(self.examples),
            "model_settings": self.model.settings(),
            "modules": [module.state_dict() for module in self.model.modules()],
            **self.loop.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        with atomic_file(self.work / STATE_FILE) as partial:
            torch.save(state, partial)

    def _resume(self) -> int | None:
        path = self.work / STATE_FILE
        if not path.is_file():
            return None
        state = torch.load(path, map_location="cpu", weights_only=False)
        if (
            state["config"] != asdict(self.config)
            or state["examples"] != len(self.examples)
            or state.get("model_settings", {}) != self.model.settings()
        ):
            raise OdqaError(
                f"{self.work}: holds an interrupted run with other settings or data; "
                "use the same options to resume it, or start over with --restart"
            )
        for module, saved in zip(self.model.modules(), state["modules"], strict=True):
            module.load_state_dict(saved)
        self.loop.load_state_dict(state)
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.step = int(state["step"])
        return self.step


def _cumulative(values) -> list[int]:
    total, out = 0, []
    for value in values:
        total += value
        out.append(total)
    return out


def _excluded(
    batch: list[TrainingExample],
    texts_per_example: list[tuple[str, ...]],
    texts: list[str],
    starts: torch.Tensor,
) -> torch.Tensor:
    """(queries, texts) True where a text is another positive of the same query text."""
    positives: dict[str, set[str]] = {}
    for example in batch:
        positives.setdefault(example.query, set()).add(example.positive)
    excluded = torch.zeros(len(batch), len(texts), dtype=torch.bool)
    for row, example in enumerate(batch):
        mine = positives[example.query]
        for column, text in enumerate(texts):
            if text in mine and column != int(starts[row]):
                excluded[row, column] = True
    return excluded
