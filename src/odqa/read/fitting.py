"""The fine-tuning loop shared by the readers: AdamW, warm-up then linear decay, clipping.

Each caller supplies only how a batch of item indexes becomes a loss; the loop owns the seeded
order, the schedule, bf16 autocast where asked, and the progress bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from odqa.models.device import autocast_context

WARMUP_SHARE = 0.1

BatchLoss = Callable[[list[int]], torch.Tensor]


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
) -> tuple[list[float], int]:
    """Train ``model`` in place over ``count`` items; the mean loss of each epoch and the
    number of optimiser steps. Only parameters that require gradients are trained."""
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
        order = torch.randperm(count, generator=generator).tolist()
        running = 0.0
        for first in range(0, count, batch_size):
            with autocast_context(device, precision):
                loss = batch_loss(order[first : first + batch_size])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            running += loss.item()
            progress.update()
            progress.set_postfix(loss=f"{loss.item():.3f}")
        losses.append(running / per_epoch)
    progress.close()
    return losses, total
