"""The one optimisation loop of every trainer: retrievers (``trainer``) and readers (``fitting``).

:class:`StepLoop` owns what each optimizer step does the same way everywhere: AdamW (weight
decay 0.01), a linear warm-up over the first ``warmup`` share of the steps then linear decay
to zero, the gradients of the step's micro-batches added up, their norm clipped, bf16 autocast
by the one precision rule of :mod:`odqa.models.device`, and the progress bar with the loss.
:func:`seeded_order` is the seeded order of the items in each epoch, drawn afresh from the
seed and the epoch number, so a resumed run can replay any epoch without the ones before it.

The callers keep only what is theirs: the retriever trainer its resumable state, gradient
accumulation, dev evaluation and checkpoints; the readers their length-grouped micro-batches.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterable, Iterator

import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from odqa.models.device import autocast_context, use_bf16

WARMUP_SHARE = 0.1
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0

MicroLoss = Callable[[], torch.Tensor]
"""One micro-batch's share of a step's loss (already weighted by its share of the step)."""


def seeded_order(count: int, *key: object) -> list[int]:
    """``range(count)`` shuffled by a generator seeded with ``key`` (e.g. seed and epoch)."""
    order = list(range(count))
    random.Random(":".join(str(part) for part in key)).shuffle(order)
    return order


class StepLoop:
    """AdamW over ``groups`` (parameter groups, each with its ``lr``) for ``total_steps``
    optimizer steps, with warm-up then linear decay, clipping and autocast."""

    def __init__(
        self,
        groups: list[dict],
        total_steps: int,
        *,
        device: torch.device,
        precision: str,
        warmup: float = WARMUP_SHARE,
        max_grad_norm: float = MAX_GRAD_NORM,
    ) -> None:
        self.device, self.precision, self.max_grad_norm = device, precision, max_grad_norm
        self.bf16 = use_bf16(device, precision)  # rejects an unknown precision now
        self.total_steps = total_steps
        self.optimizer = torch.optim.AdamW(groups, weight_decay=WEIGHT_DECAY)
        self.schedule = get_linear_schedule_with_warmup(
            self.optimizer, int(warmup * total_steps), total_steps
        )
        self.parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
        self._progress: tqdm | None = None

    def autocast(self) -> contextlib.AbstractContextManager:
        """The precision region of a forward pass (training or evaluation)."""
        return autocast_context(self.device, self.precision)

    def step(self, parts: Iterable[MicroLoss]) -> float:
        """One optimizer step over the micro-batch losses ``parts`` (each under autocast,
        their gradients added up); returns the step's loss, their sum."""
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for part in parts:
            with self.autocast():
                loss = part()
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(self.parameters, self.max_grad_norm)
        self.optimizer.step()
        self.schedule.step()
        if self._progress is not None:
            self._progress.update()
            self._progress.set_postfix(loss=f"{total:.4f}")
        return total

    @property
    def learning_rate(self) -> float:
        """The first group's learning rate for the next step."""
        return self.schedule.get_last_lr()[0]

    @contextlib.contextmanager
    def progress(self, description: str, show: bool, done: int = 0) -> Iterator[None]:
        """A progress bar over the steps (``done`` of them already taken) inside the block."""
        bar = tqdm(
            total=self.total_steps, initial=done, desc=description, unit="step", disable=not show
        )
        self._progress = bar
        try:
            yield
        finally:
            self._progress = None
            bar.close()

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.schedule.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
