"""The training loop: contrastive or distillation training of a retriever, resumable.

AdamW with linear warmup then linear decay, gradient accumulation and clipping, bf16 autocast
where asked (the default: fp32 on CPU, bf16 on GPU), a dev evaluation through odqa's own
metrics, and a checkpoint every ``save_every`` optimizer steps. Batches follow a seeded
permutation per epoch, so a resumed run replays exactly the schedule it was interrupted in.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from odqa.errors import OdqaError
from odqa.fs import atomic_file
from odqa.train.examples import TrainingExample
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
        bf16: bool,
        evaluate: DevEvaluation | None = None,
        on_step: StepHook | None = None,
    ) -> None:
        if not examples:
            raise OdqaError("no training examples")
        self.model, self.examples, self.config, self.work = model, list(examples), config, work
        self.device, self.bf16, self.evaluate, self.on_step = device, bf16, evaluate, on_step
        self.distill = self._uses_distillation()
        self.temperature = config.temperature or model.default_temperature
        per_epoch = math.ceil(len(self.examples) / (config.batch_size * config.accumulation))
        self.steps_per_epoch = per_epoch
        self.total_steps = max(1, math.ceil(per_epoch * config.epochs))
        groups = model.parameter_groups(config.learning_rate, config.head_learning_rate)
        self.optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(config.warmup * self.total_steps), self.total_steps
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
        progress = tqdm(
            total=self.total_steps, initial=self.step, desc="training", disable=not show_progress
        )
        last_dev: dict[str, float] = {}
        if resumed_from is None and self.evaluate is not None:
            self._log({"step": 0, "dev": self._dev()})
        while self.step < self.total_steps:
            loss = self._optimizer_step(self._batches_of(self.step))
            trained += self.config.batch_size * self.config.accumulation
            self.step += 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.4f}")
            entry: dict = {"step": self.step, "loss": loss, "lr": self.scheduler.get_last_lr()[0]}
            if self._due(self.config.eval_every or self.steps_per_epoch):
                last_dev = self._dev()
                entry["dev"] = last_dev
            self._log(entry)
            if self._due(self.config.save_every):
                self._save_state()
            if self.on_step is not None:
                self.on_step(self.step)
        progress.close()
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
            order = self._order(epoch)
            batch = [self.examples[i] for i in order[offset : offset + size]]
            if batch:
                batches.append(batch)
        return batches

    def _order(self, epoch: int) -> list[int]:
        order = list(range(len(self.examples)))
        random.Random(f"{self.config.seed}:{epoch}").shuffle(order)
        return order

    def _optimizer_step(self, batches: list[list[TrainingExample]]) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for batch in batches:
            with self._autocast():
                loss = self._loss(batch) / len(batches)
            loss.backward()
            total += float(loss.detach())
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        return total

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

    def _autocast(self):
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return torch.autocast(self.device.type, enabled=False)

    def _dev(self) -> dict[str, float]:
        if self.evaluate is None:
            return {}
        for module in self.model.modules():
            module.eval()
        try:
            with self._autocast():
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
            "modules": [module.state_dict() for module in self.model.modules()],
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
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
        if state["config"] != asdict(self.config) or state["examples"] != len(self.examples):
            raise OdqaError(
                f"{self.work}: holds an interrupted run with other settings or data; "
                "use the same options to resume it, or start over with --restart"
            )
        for module, saved in zip(self.model.modules(), state["modules"], strict=True):
            module.load_state_dict(saved)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
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
