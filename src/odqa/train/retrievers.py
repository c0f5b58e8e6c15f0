"""The two retrievers odqa trains, as differentiable scorers that save loadable checkpoints.

A scorer turns a batch of queries and texts into a score matrix with gradients, names its
parameter groups (encoder and head), encodes for dev evaluation, and writes its checkpoint:
ColBERT in the Stanford layout, dense as a sentence-transformers-style Hugging Face folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from odqa.index.late.exact import maxsim, padded
from odqa.models.colbert import ColBERTEncoder
from odqa.models.dense import DenseEncoder
from odqa.train.checkpoints import save_dense_folder, save_stanford_colbert


class TrainableRetriever(Protocol):
    """What the trainer needs of a model under training."""

    default_temperature: float

    def modules(self) -> list[torch.nn.Module]: ...

    def parameter_groups(self, learning_rate: float, head_learning_rate: float) -> list[dict]: ...

    def score(self, queries: Sequence[str], texts: Sequence[str]) -> torch.Tensor: ...

    def dev_scores(self, queries: Sequence[str], texts: Sequence[str]) -> np.ndarray: ...

    def save(self, folder: Path) -> None: ...

    def settings(self) -> dict[str, int]:
        """Settings of the model that shape training (a resumed run must have the same) and
        that its checkpoint records; they go into the training summary."""
        ...


class ColBERTScorer:
    """A ColBERT encoder being trained: MaxSim of every query against every text."""

    default_temperature = 1.0  # MaxSim sums cosine similarities over 32 query tokens

    def __init__(self, encoder: ColBERTEncoder, training_doc_maxlen: int) -> None:
        self.encoder = encoder
        self.training_doc_maxlen = training_doc_maxlen

    def modules(self) -> list[torch.nn.Module]:
        return [self.encoder.model, self.encoder.projection]

    def parameter_groups(self, learning_rate: float, head_learning_rate: float) -> list[dict]:
        return [
            {"params": list(self.encoder.model.parameters()), "lr": learning_rate},
            {"params": list(self.encoder.projection.parameters()), "lr": head_learning_rate},
        ]

    def score(self, queries: Sequence[str], texts: Sequence[str]) -> torch.Tensor:
        Q, qmask = self._queries(queries)
        D, dmask = self._texts(texts, self.training_doc_maxlen)
        return maxsim(Q, qmask, D, dmask)

    @torch.inference_mode()
    def dev_scores(self, queries: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Exact MaxSim of ``queries`` against ``texts`` (truncated at the checkpoint's
        ``doc_maxlen``), as a (queries, texts) array."""
        Q, qmask = self.encoder.encode_queries(list(queries))
        embeddings, doclens = self.encoder.encode_documents(list(texts))
        D, dmask = padded(embeddings, doclens)
        return maxsim(Q, qmask, D, dmask).float().cpu().numpy()

    def save(self, folder: Path) -> None:
        save_stanford_colbert(self.encoder, folder)

    def settings(self) -> dict[str, int]:
        """The lengths recorded in the checkpoint, and the one training cut documents at."""
        settings = self.encoder.settings
        return {
            "query_maxlen": settings.query_maxlen,
            "doc_maxlen": settings.doc_maxlen,
            "training_doc_maxlen": min(self.training_doc_maxlen, settings.doc_maxlen),
        }

    def _queries(self, queries: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, attention, _ = self.encoder.tokenize(list(queries), query=True)
        keep = self.encoder.query_mask(attention).to(self.encoder.device)
        return self.encoder.token_vectors(ids, attention) * keep.unsqueeze(-1), keep

    def _texts(self, texts: Sequence[str], maxlen: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids, attention, _ = self.encoder.tokenize(list(texts), query=False, maxlen=maxlen)
        keep = self.encoder.document_mask(ids, attention).to(self.encoder.device)
        return self.encoder.token_vectors(ids, attention), keep


class DenseScorer:
    """A dense bi-encoder being trained: dot products of pooled, normalised vectors."""

    default_temperature = 0.05  # cosine similarities; scale 20 as sentence-transformers uses

    def __init__(self, encoder: DenseEncoder) -> None:
        self.encoder = encoder

    def modules(self) -> list[torch.nn.Module]:
        return [self.encoder.model]

    def parameter_groups(self, learning_rate: float, head_learning_rate: float) -> list[dict]:
        return [{"params": list(self.encoder.model.parameters()), "lr": learning_rate}]

    def score(self, queries: Sequence[str], texts: Sequence[str]) -> torch.Tensor:
        encoder = self.encoder
        q = encoder.text_vectors([encoder.query_prefix + text for text in queries])
        d = encoder.text_vectors([encoder.document_prefix + text for text in texts])
        return q @ d.T

    @torch.inference_mode()
    def dev_scores(self, queries: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        q = self.encoder.encode_queries(list(queries))
        d = self.encoder.encode_documents(list(texts))
        return q @ d.T

    def save(self, folder: Path) -> None:
        save_dense_folder(self.encoder, folder)

    def settings(self) -> dict[str, int]:
        return {}
