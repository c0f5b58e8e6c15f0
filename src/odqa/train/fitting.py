"""The fine-tuning loop shared by the readers: AdamW, warm-up then linear decay, clipping.

Each caller supplies only how a batch of item indexes becomes a loss; the loop owns the seeded
order, the schedule, bf16 autocast where asked, and the progress bar.

Given the items' token lengths, the loop batches items of similar length together (shuffled
pools of :data:`POOL_BATCHES` batches, each pool sorted by length, the batches of all pools
shuffled), so little of a batch is padding, and runs each batch as micro-batches of at most
``max_tokens`` padded tokens whose gradients add up to the batch's. On a CPU one forward pass
over 32 x 384 tokens costs about three times more per token than four passes over 8 x 384.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from odqa.models.device import autocast_context

WARMUP_SHARE = 0.1
POOL_BATCHES = 50
MAX_TOKENS = 4096

BatchLoss = Callable[[list[int]], torch.Tensor]


def epoch_batches(
    count: int,
    batch_size: int,
    generator: torch.Generator,
    lengths: Sequence[int] | None = None,
) -> list[list[int]]:
    """One epoch's batches of item indexes: a seeded shuffle, with similar lengths grouped
    when ``lengths`` is given."""
    order = torch.randperm(count, generator=generator).tolist()
    if lengths is None:
        return [order[first : first + batch_size] for first in range(0, count, batch_size)]
    pool_size = POOL_BATCHES * batch_size
    batches = []
    for first in range(0, count, pool_size):
        pool = sorted(order[first : first + pool_size], key=lambda item: lengths[item])
        batches += [pool[start : start + batch_size] for start in range(0, len(pool), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[position] for position in shuffled]


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
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    device: torch.device,
    precision: str,
    show_progress: bool,
    description: str,
    lengths: Sequence[int] | None = None,
    max_tokens: int = MAX_TOKENS,
) -> tuple[list[float], int]:
    """Train ``model`` in place over ``count`` items; the mean loss of each epoch and the
    number of optimiser steps. Only parameters that require gradients are trained.

    ``batch_loss`` must return the mean loss over the items it is given; micro-batch losses
    are weighted by their share of the batch, so the gradient is the whole batch's mean.
    """
    model.to(device).train()
    per_epoch = math.ceil(count / batch_size)
    total = epochs * per_epoch
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(WARMUP_SHARE * total), total)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    progress = tqdm(total=total, desc=description, unit="step", disable=not show_progress)
    for _ in range(epochs):
        running = 0.0
        for batch in epoch_batches(count, batch_size, generator, lengths):
            batch_mean = 0.0
            for run in micro_batches(batch, lengths, max_tokens):
                with autocast_context(device, precision):
                    loss = batch_loss(run) * (len(run) / len(batch))
                loss.backward()
                batch_mean += loss.item()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            running += batch_mean
            progress.update()
            progress.set_postfix(loss=f"{batch_mean:.3f}")
        losses.append(running / per_epoch)
    progress.close()
    return losses, total
