"""Fine-tuning a reader (extractive or yes/no): the steps the two reader trainers share.

:class:`FineTuneConfig` holds the settings both take; :func:`fine_tuning` loads the base model
into a temporary sibling of the output folder (seeded, so the new head starts the same way each
time); :meth:`FineTuning.fit` trains it on :class:`~odqa.train.loop.StepLoop`, the loop the
retriever trainer uses too; :meth:`FineTuning.save` writes the model, its tokenizer and the
``odqa_training.json`` record, and the folder is renamed into place when the block ends.

Given the items' token lengths, :func:`fit` batches items of similar length together (shuffled
pools of :data:`POOL_BATCHES` batches, each pool sorted by length, the batches of all pools
shuffled), so little of a batch is padding, and runs each batch as micro-batches of at most
:data:`MAX_TOKENS` padded tokens whose gradients add up to the batch's. Small passes bound the
memory: training MiniLM on the default 8 windows of 384 tokens held 2.7 GB at its peak in one
pass and 1.7 GB in passes of 2 windows, which ran no slower (2 cores, bf16); on a CPU one pass
over 32 x 384 tokens costs about three times more per token than four passes over 8 x 384.
Batches are padded to a multiple of :data:`PAD_MULTIPLE` tokens, so that few shapes occur.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from odqa.errors import OdqaError
from odqa.fs import atomic_directory
from odqa.models.checkpoint import ModelRef, resolve_model
from odqa.models.device import PRECISIONS, pick_device
from odqa.read.extractive import quiet_transformers
from odqa.train.loop import MicroLoss, StepLoop, seeded_order

POOL_BATCHES = 50
MAX_TOKENS = 768
"""Padded tokens in one forward pass of training (a batch wider than this is cut)."""
PAD_MULTIPLE = 64
"""Training batches are padded to a multiple of this many tokens: the CPU kernels torch keeps
for each input shape (oneDNN's primitive cache) then stay few; with a shape for every length,
training MiniLM grew from 1.2 to 1.9 GB in 40 steps, padded it stayed at 1.3-1.4 GB."""
TRAINING_RECORD = "odqa_training.json"

BatchLoss = Callable[[list[int]], torch.Tensor]
Features = list[dict[str, Any]]
"""Tokenised examples, one dict of model inputs (``input_ids`` ...) each."""
ModelLoader = Callable[..., tuple[Any, Any]]
"""``load(folder, need_head=False)`` -> ``(tokenizer, model)``."""


@dataclass(frozen=True)
class FineTuneConfig:
    """The settings every reader trainer takes: passes, batch, peak learning rate, tokens per
    example, seed (head initialisation, dropout, order), torch device and precision."""

    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 1e-4
    max_length: int = 384
    seed: int = 0
    device: str | None = None
    precision: str = "auto"

    def __post_init__(self) -> None:
        if min(self.epochs, self.batch_size) < 1 or not self.peak_learning_rate > 0:
            raise OdqaError("epochs and batch_size must be at least 1, learning_rate positive")
        if self.precision not in PRECISIONS:
            raise OdqaError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @property
    def peak_learning_rate(self) -> float:
        """The learning rate the schedule warms up to."""
        return self.learning_rate

    def record(self) -> dict[str, Any]:
        """The settings ``odqa_training.json`` keeps (device and precision are not kept)."""
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.peak_learning_rate,
            "max_length": self.max_length,
            **self.own_record(),
            "seed": self.seed,
        }

    def own_record(self) -> dict[str, Any]:
        """A trainer's own settings in the record."""
        return {}


@dataclass
class FineTuning:
    """A reader being fine-tuned: its base, tokenizer, model and the folder being written."""

    config: FineTuneConfig
    staging: Path
    base: ModelRef
    tokenizer: Any
    model: Any
    device: torch.device
    began: float

    def inputs(self, features: Features) -> dict[str, torch.Tensor]:
        """``features`` padded into a batch of tensors on the training device, to a multiple
        of :data:`PAD_MULTIPLE` tokens (never past ``max_length``)."""
        longest = max(len(item["input_ids"]) for item in features)
        width = max(
            longest, min(-(-longest // PAD_MULTIPLE) * PAD_MULTIPLE, self.config.max_length)
        )
        batch = self.tokenizer.pad(
            features, padding="max_length", max_length=width, return_tensors="pt"
        )
        return {name: value.to(self.device) for name, value in batch.items()}

    def fit(
        self, features: Features, batch_loss: BatchLoss, description: str, show_progress: bool
    ) -> tuple[list[float], int]:
        """Train the model on ``features`` by ``batch_loss`` (see :func:`fit`)."""
        return fit(
            self.model,
            len(features),
            batch_loss,
            self.config,
            device=self.device,
            description=description,
            show_progress=show_progress,
            lengths=[len(item["input_ids"]) for item in features],
        )

    def save(
        self,
        model: Any,
        losses: list[float],
        steps: int,
        counts: dict[str, Any],
        sources: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write ``model``, the tokenizer and the training record; returns the summary
        (``steps``, ``seconds``, the ``counts`` and ``loss``, the mean of each epoch)."""
        with quiet_transformers():
            model.to("cpu").save_pretrained(self.staging)
            self.tokenizer.save_pretrained(self.staging)
        summary = {
            "steps": steps,
            "seconds": round(time.perf_counter() - self.began, 1),
            **counts,
            "loss": losses,
        }
        base = {"base": self.base.name, "base_sha256": self.base.sha256}
        record = {**base, **(sources or {}), **self.config.record(), **summary}
        text = json.dumps(record, indent=2) + "\n"
        (self.staging / TRAINING_RECORD).write_text(text, encoding="utf-8")
        return summary


@contextlib.contextmanager
def fine_tuning(
    out_dir: str | Path,
    config: FineTuneConfig,
    base: str | Path | None,
    load: ModelLoader,
    *,
    overwrite: bool,
) -> Iterator[FineTuning]:
    """The base model (``None``: the embedded all-MiniLM-L6-v2) loaded with a fresh head,
    seeded, and ``config.max_length`` capped at the model's positions; the folder written
    inside the block replaces ``out_dir`` at its end (an existing one is refused unless
    ``overwrite``), or is removed if the block fails."""
    began = time.perf_counter()
    with atomic_directory(out_dir, overwrite=overwrite) as staging:
        ref = resolve_model(base)
        torch.manual_seed(config.seed)
        tokenizer, model = load(ref.path, need_head=False)
        positions = getattr(model.config, "max_position_embeddings", 512)
        config = replace(config, max_length=min(config.max_length, positions))
        device = pick_device(config.device)
        yield FineTuning(config, staging, ref, tokenizer, model, device, began)


def epoch_batches(
    count: int,
    batch_size: int,
    seed: int,
    epoch: int,
    lengths: Sequence[int] | None = None,
) -> list[list[int]]:
    """One epoch's batches of item indexes: a seeded shuffle, with similar lengths grouped
    when ``lengths`` is given."""
    order = seeded_order(count, seed, epoch)
    if lengths is None:
        return [order[first : first + batch_size] for first in range(0, count, batch_size)]
    pool_size = POOL_BATCHES * batch_size
    batches = []
    for first in range(0, count, pool_size):
        pool = sorted(order[first : first + pool_size], key=lambda item: lengths[item])
        batches += [pool[start : start + batch_size] for start in range(0, len(pool), batch_size)]
    return [batches[position] for position in seeded_order(len(batches), seed, epoch, "batches")]


def micro_batches(
    batch: list[int], lengths: Sequence[int] | None, max_tokens: int
) -> list[list[int]]:
    """``batch`` cut into runs whose padded size (items x longest) stays within
    ``max_tokens``; whole when lengths are unknown. A single item is never cut."""
    if lengths is None:
        return [batch]
    runs: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for item in batch:
        widest = max(longest, lengths[item])
        if current and (len(current) + 1) * widest > max_tokens:
            runs.append(current)
            current, widest = [], lengths[item]
        current.append(item)
        longest = widest
    runs.append(current)
    return runs


def fit(
    model: torch.nn.Module,
    count: int,
    batch_loss: BatchLoss,
    config: FineTuneConfig,
    *,
    device: torch.device,
    description: str,
    show_progress: bool = False,
    lengths: Sequence[int] | None = None,
    max_tokens: int = MAX_TOKENS,
) -> tuple[list[float], int]:
    """Train ``model`` in place over ``count`` items for ``config.epochs`` passes of
    ``config.batch_size`` items; the mean loss of each epoch and the number of optimiser steps.
    Only parameters that require gradients are trained.

    ``batch_loss`` must return the mean loss over the items it is given; micro-batch losses
    are weighted by their share of the batch, so the gradient is the whole batch's mean.
    """
    model.to(device).train()
    per_epoch = math.ceil(count / config.batch_size)
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    loop = StepLoop(
        [{"params": trainable, "lr": config.peak_learning_rate}],
        config.epochs * per_epoch,
        device=device,
        precision=config.precision,
    )

    def share_of(batch: list[int], run: list[int]) -> MicroLoss:
        return lambda: batch_loss(run) * (len(run) / len(batch))

    losses = []
    with loop.progress(description, show_progress):
        for epoch in range(config.epochs):
            running = 0.0
            for batch in epoch_batches(count, config.batch_size, config.seed, epoch, lengths):
                runs = micro_batches(batch, lengths, max_tokens)
                running += loop.step([share_of(batch, run) for run in runs])
            losses.append(running / per_epoch)
    return losses, loop.total_steps
