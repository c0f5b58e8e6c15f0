"""Encoding batches: by token length across the whole call, and vectors that do not depend on
how texts are batched or ordered."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

import odqa.models.batching as batching
from odqa.errors import OdqaError
from odqa.models import ColBERTEncoder, DenseEncoder
from odqa.models.batching import length_batches, token_lengths

TEXTS = [
    "Scurvy is caused by a lack of vitamin C.",
    "",
    "supercalifragilisticexpialidocious",
    "a b c d e f g h i j k l",
    "The ocean is deep, and blue; " * 12,
    "Kinases phosphorylate proteins.",
    "Cyclins control the cell division cycle, which ends in mitosis.",
]


def test_length_batches_cover_every_row_once_longest_first() -> None:
    lengths = np.random.default_rng(0).integers(1, 300, size=1000)
    batches = length_batches(lengths, 64)
    rows = [row for batch in batches for row in batch]
    assert sorted(rows) == list(range(1000))
    assert all(len(batch) <= 64 for batch in batches)
    assert [lengths[row] for row in rows] == sorted(lengths, reverse=True)


def test_length_batches_keep_input_order_among_equal_lengths() -> None:
    assert length_batches([2, 5, 2, 5, 2], 2) == [[1, 3], [0, 2], [4]]
    assert length_batches([], 8) == []
    with pytest.raises(OdqaError, match="batch_size"):
        length_batches([1, 2], 0)


def test_token_lengths_measure_block_by_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "LENGTH_BLOCK", 3)
    calls: list[int] = []

    def tokenize(block: list[str]) -> list[list[int]]:
        calls.append(len(block))
        return [[0] * len(text.split()) for text in block]

    lengths = token_lengths(TEXTS, tokenize)
    assert lengths.tolist() == [len(text.split()) for text in TEXTS]
    assert calls == [3, 3, 1]


def test_dense_batches_follow_token_length_not_characters(tiny_model: Path) -> None:
    encoder = DenseEncoder(tiny_model, device="cpu", precision="fp32")
    seen: list[list[str]] = []
    encode_batch = encoder._encode_batch

    def recording(texts: list[str]) -> np.ndarray:
        seen.append(texts)
        return encode_batch(texts)

    encoder._encode_batch = recording  # type: ignore[method-assign]
    encoder.encode(TEXTS, batch_size=2)
    tokens = {text: len(encoder._token_ids([text])[0]) for text in TEXTS}
    order = [tokens[text] for batch in seen for text in batch]
    assert order == sorted(order, reverse=True)
    # 34 characters but few tokens, 23 characters but 14 tokens: characters would misorder them
    assert tokens["supercalifragilisticexpialidocious"] < tokens["a b c d e f g h i j k l"]


def test_dense_vectors_do_not_depend_on_batching_or_order(tiny_model: Path) -> None:
    encoder = DenseEncoder(tiny_model, device="cpu", precision="fp32")
    alone = np.stack([encoder.encode([text])[0] for text in TEXTS])
    for batch_size in (1, 2, 64):
        np.testing.assert_allclose(encoder.encode(TEXTS, batch_size=batch_size), alone, atol=1e-5)
    shuffled = list(range(len(TEXTS)))
    random.Random(0).shuffle(shuffled)
    vectors = encoder.encode([TEXTS[i] for i in shuffled], batch_size=3)
    np.testing.assert_allclose(vectors, alone[shuffled], atol=1e-5)


def test_colbert_vectors_do_not_depend_on_batching_or_order(tiny_model: Path) -> None:
    encoder = ColBERTEncoder(tiny_model, device="cpu", precision="fp32", doc_maxlen=32)
    alone = [encoder.encode_documents([text]) for text in TEXTS]
    shuffled = list(range(len(TEXTS)))
    random.Random(1).shuffle(shuffled)
    for batch_size, order in ((1, range(len(TEXTS))), (3, shuffled), (64, shuffled)):
        vectors, doclens = encoder.encode_documents([TEXTS[i] for i in order], batch_size)
        assert doclens.tolist() == [int(alone[i][1][0]) for i in order]
        torch.testing.assert_close(
            vectors, torch.cat([alone[i][0] for i in order]), atol=1e-5, rtol=0
        )
    assert encoder.last_truncated == 1  # the long ocean text, counted once in the last call
    queries, mask = encoder.encode_queries([TEXTS[i] for i in shuffled], batch_size=2)
    for row, i in enumerate(shuffled):
        one, one_mask = encoder.encode_queries([TEXTS[i]])
        width = one.shape[1]
        assert torch.equal(mask[row, :width], one_mask[0]) and not mask[row, width:].any()
        torch.testing.assert_close(queries[row, :width], one[0], atol=1e-5, rtol=0)


def test_the_default_encoding_batch_follows_the_device() -> None:
    from odqa.models.device import CPU_BATCH, GPU_BATCH, default_batch

    assert default_batch(torch.device("cpu")) == CPU_BATCH == 16
    assert default_batch(torch.device("cuda")) == GPU_BATCH > CPU_BATCH
    with pytest.raises(OdqaError, match="at least 1"):
        length_batches([3, 2, 1], 0)
