"""The ColBERT part of an index build: train the codec on a sample, then stream passages in.

The sample is drawn before any passage is compressed: a first, read-only pass over the corpus
counts its documents (and checks every record), then up to ``sample_documents`` of them,
chosen by a seeded generator, are chunked and encoded to train the centroids and buckets.
Their vectors are kept (float16) until the main pass reaches them, so no document is
encoded twice; memory for this is bounded by the sample size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from odqa.corpus import ChunkSpec, Document, Passage, chunk_documents, is_empty
from odqa.index.late import LateIndexWriter
from odqa.models.colbert import ColBERTEncoder

LATE_FOLDER = "colbert"
Vectors = tuple[torch.Tensor, torch.Tensor]


class ColBERTBuild:
    """Encodes passages with a ColBERT encoder into a compressed late-interaction index."""

    def __init__(
        self,
        folder: Path,
        encoder: ColBERTEncoder,
        *,
        nbits: int,
        batch_size: int,
        seed: int = 0,
    ) -> None:
        self.encoder = encoder
        self.batch_size = batch_size
        self.writer = LateIndexWriter(
            folder / LATE_FOLDER, nbits=nbits, seed=seed, device=encoder.device
        )
        self.seed = seed
        self.truncated = 0
        self._cached: dict[int, list[Vectors]] = {}
        self._documents_seen = 0

    def train(
        self,
        documents: Callable[[], Iterable[Document]],
        tokenizer,
        chunk: ChunkSpec,
        text_of: Callable[[Passage], str],
        sample_documents: int,
    ) -> None:
        """Count the corpus, encode a seeded sample of its documents, train the codec."""
        count = sum(1 for document in documents() if not is_empty(document))
        rng = np.random.default_rng(self.seed)
        chosen = set(rng.choice(count, size=min(count, sample_documents), replace=False).tolist())
        numbered = enumerate(d for d in documents() if not is_empty(d))
        sample = {number: document for number, document in numbered if number in chosen}
        passages = list(chunk_documents(list(sample.values()), tokenizer, chunk))
        vectors = self._encode([text_of(passage) for passage in passages])
        number_of = {document.id: number for number, document in sample.items()}
        for passage, part in zip(passages, split_passages(*vectors), strict=True):
            self._cached.setdefault(number_of[passage.doc_id], []).append(part)
        tokens_per_document = vectors[0].shape[0] / max(1, len(sample))
        self.writer.train(vectors[0].float(), num_tokens=int(tokens_per_document * count))

    def add(
        self, documents: Sequence[Document], passages: Sequence[Passage], texts: Sequence[str]
    ) -> None:
        """Compress the passages of ``documents`` (non-empty, in corpus order) into the index."""
        number_of = {doc.id: self._documents_seen + i for i, doc in enumerate(documents)}
        self._documents_seen += len(documents)
        fresh = [i for i, p in enumerate(passages) if number_of[p.doc_id] not in self._cached]
        encoded = iter(split_passages(*self._encode([texts[i] for i in fresh])))
        parts: list[Vectors] = []
        for passage in passages:  # in document order, chunks in order: as cached
            cached = self._cached.get(number_of[passage.doc_id])
            parts.append(cached.pop(0) if cached is not None else next(encoded))
            if cached == []:
                del self._cached[number_of[passage.doc_id]]
        embeddings = torch.cat([vectors for vectors, _ in parts]).float()
        doclens = torch.cat([lens for _, lens in parts])
        self.writer.add(embeddings, doclens)

    def _encode(self, texts: list[str]) -> Vectors:
        embeddings, doclens = self.encoder.encode_documents(texts, batch_size=self.batch_size)
        self.truncated += self.encoder.last_truncated
        return embeddings.half(), doclens

    def finish(self) -> dict:
        """Close the index; returns what the manifest records about it."""
        self.writer.finish()
        meta = self.writer.meta
        return {
            **self.encoder.describe(),
            "nbits": meta["nbits"],
            "centroids": meta["num_centroids"],
            "tokens": meta["num_tokens"],
            "truncated_passages": self.truncated,
        }


def split_passages(embeddings: torch.Tensor, doclens: torch.Tensor) -> list[Vectors]:
    """One ``(vectors, doclen)`` pair per passage."""
    pieces = torch.split(embeddings, doclens.tolist())
    return [(piece, doclens[i : i + 1]) for i, piece in enumerate(pieces)]
