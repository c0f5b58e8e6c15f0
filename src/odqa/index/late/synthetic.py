"""Seeded synthetic token embeddings for tests and benchmarks: clustered like real ones.

Passages draw words from a few topics; a token is its word's vector plus noise, so tokens
cluster by word and passages that share words score high, as ColBERT embeddings do.
"""

from __future__ import annotations

import torch


def make_collection(
    num_passages: int,
    dim: int,
    *,
    min_len: int = 20,
    max_len: int = 60,
    vocab: int = 2000,
    topics: int = 50,
    noise: float = 0.3,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit token embeddings (tokens, dim) float32, doclens (n,) int64, and word ids per token."""
    generator = torch.Generator().manual_seed(seed)
    words = torch.nn.functional.normalize(torch.randn(vocab, dim, generator=generator), dim=1)
    topic_words = torch.randint(vocab, (topics, vocab // topics * 2), generator=generator)
    doclens = torch.randint(min_len, max_len + 1, (num_passages,), generator=generator)
    passage_topics = torch.randint(topics, (num_passages, 2), generator=generator)
    owner = torch.repeat_interleave(torch.arange(num_passages), doclens)
    topic = passage_topics[owner, torch.randint(2, (len(owner),), generator=generator)]
    slot = torch.randint(topic_words.shape[1], (len(owner),), generator=generator)
    ids = topic_words[topic, slot]
    vectors = words[ids] + noise / dim**0.5 * torch.randn(len(ids), dim, generator=generator)
    return torch.nn.functional.normalize(vectors, dim=1), doclens, ids


def make_queries(
    embeddings: torch.Tensor,
    doclens: torch.Tensor,
    count: int,
    *,
    length: int = 32,
    noise: float = 0.3,
    seed: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries (count, length, dim), their mask, and the pid each was drawn from.

    A query has ``length // 2`` to ``length`` tokens, each a noisy copy of a random token of
    one passage; the remaining positions are zero and masked out.
    """
    generator = torch.Generator().manual_seed(seed)
    dim = embeddings.shape[1]
    offsets = torch.cumsum(doclens, 0) - doclens
    candidates = torch.nonzero(doclens > 0).flatten()
    sources = candidates[torch.randint(len(candidates), (count,), generator=generator)]
    picks = (torch.rand(count, length, generator=generator) * doclens[sources][:, None]).long()
    Q = embeddings[offsets[sources][:, None] + picks]
    Q = Q + noise / dim**0.5 * torch.randn(count, length, dim, generator=generator)
    sizes = torch.randint(length // 2, length + 1, (count,), generator=generator)
    qmask = torch.arange(length)[None, :] < sizes[:, None]
    return torch.nn.functional.normalize(Q, dim=-1) * qmask[..., None], qmask, sources
