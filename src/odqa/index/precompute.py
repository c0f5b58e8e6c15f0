"""Encoding a corpus once into precomputed vectors (:mod:`odqa.index.vectors`), cut into
passages exactly as ``odqa index`` cuts it, so a later build reads them instead of encoding."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from odqa.corpus import ChunkSpec, chunk_documents, indexable_text, is_empty, read_documents
from odqa.corpus.readers import count_documents
from odqa.errors import InputError, OdqaError
from odqa.index.vectors import KINDS, SHARD_PASSAGES, VectorsWriter
from odqa.models import DenseEncoder
from odqa.models.colbert import ColBERTEncoder


def encode_corpus(
    corpus: str | Path,
    out: str | Path,
    *,
    kind: str = "dense",
    model: str | None = None,
    chunk: ChunkSpec | None = None,
    dtype: str = "float16",
    encode_batch: int | None = None,
    batch_docs: int = 512,
    device: str | None = None,
    precision: str = "auto",
    input_format: str = "auto",
    shard_passages: int = SHARD_PASSAGES,
    overwrite: bool = False,
    show_progress: bool = False,
) -> Path:
    """Encode the passages of ``corpus`` with ``model`` (a dense encoder, or a ColBERT
    checkpoint for ``kind="colbert"``) into the vectors folder ``out``; returns its path.

    Passages are cut by the encoder's tokenizer with ``chunk``; empty documents are skipped,
    as a build skips them. ``out`` appears only when complete.
    """
    if kind not in KINDS:
        raise OdqaError(f"--retriever must be one of {KINDS} for precomputed vectors, got {kind!r}")
    chunk = chunk or ChunkSpec()
    if kind == "dense":
        encoder = DenseEncoder(model, device=device, precision=precision)
        described = encoder.settings()
    else:
        encoder = ColBERTEncoder(model, device=device, precision=precision)
        described = encoder.describe()
    chunking = {"tokens": chunk.tokens, "overlap": chunk.overlap, "tokenizer": encoder.ref.name}
    total = None
    if show_progress:  # lines or a table's rows, cheap; else a first pass
        total = count_documents(corpus, input_format)
        total = total if total is not None else sum(1 for _ in read_documents(corpus, input_format))
    progress = tqdm(total=total, desc="encoding", unit="doc", disable=not show_progress)
    passages_seen = 0
    with VectorsWriter(
        out,
        kind,
        described,
        encoder.dim,
        dtype,
        chunking,
        shard_passages=shard_passages,
        overwrite=overwrite,
    ) as writer:
        documents = read_documents(corpus, input_format)
        while batch := list(itertools.islice(documents, batch_docs)):
            kept = [document for document in batch if not is_empty(document)]
            passages = list(chunk_documents(kept, encoder.tokenizer, chunk))
            if passages:
                texts = [indexable_text(passage) for passage in passages]
                ids = [(passage.doc_id, passage.chunk) for passage in passages]
                if kind == "dense":
                    writer.add(ids, encoder.encode_documents(texts, batch_size=encode_batch))
                else:
                    vectors, doclens = encoder.encode_documents(texts, batch_size=encode_batch)
                    writer.add(ids, vectors.numpy(), doclens.numpy().astype(np.int64))
                passages_seen += len(passages)
            progress.update(len(batch))
        progress.close()
        if passages_seen == 0:
            raise InputError("the corpus holds no documents with text", path=corpus)
    return writer.target
