"""Training losses: a score matrix of queries against a batch's texts, and answer spans."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def contrastive_loss(
    scores: torch.Tensor, targets: torch.Tensor, excluded: torch.Tensor, temperature: float
) -> torch.Tensor:
    """InfoNCE: each query's positive against every other text of the batch.

    ``scores`` (queries, texts); ``targets`` (queries,) the column of each query's positive;
    ``excluded`` (queries, texts) bool marks texts that must not count as negatives for that
    query (its other positives, duplicates of its positive). In-batch negatives are all other
    examples' texts; hard negatives are the query's own ``texts[1:]``.
    """
    logits = (scores / temperature).masked_fill(excluded, float("-inf"))
    return F.cross_entropy(logits, targets)


def distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """KL divergence from the teacher's softmax to the student's, over each query's own texts.

    ``student`` and ``teacher`` are (queries, texts per query) scores; the teacher's are divided
    by ``temperature`` before the softmax, the student's are taken as they are.
    """
    target = F.log_softmax(teacher / temperature, dim=-1)
    return F.kl_div(F.log_softmax(student, dim=-1), target, log_target=True, reduction="batchmean")


def span_loss(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    starts: torch.Tensor,
    ends: torch.Tensor,
    attention_mask: torch.Tensor,
) -> torch.Tensor:
    """The mean cross-entropy of the gold start and end tokens over each window's real tokens.

    ``*_logits`` and ``attention_mask`` are (windows, tokens); ``starts``/``ends`` (windows,)
    the gold positions. Padding tokens (mask 0) are left out of the softmax.
    """
    padding = attention_mask == 0
    start = start_logits.float().masked_fill(padding, float("-inf"))
    end = end_logits.float().masked_fill(padding, float("-inf"))
    return (F.cross_entropy(start, starts) + F.cross_entropy(end, ends)) / 2
