"""``odqa encode``: what the encode stage yields for one kind, written into a precomputed
vectors folder (:mod:`odqa.encode.vectors`) that a later build reads instead of encoding.

The passages are cut and encoded by an :class:`~odqa.encode.stage.EncodeStage`, the code a
build runs, here or on a Ray cluster. Resumable: shards close at whole documents, and a run
cut short (Ctrl-C, a lost cluster) keeps them, so running it again encodes only the
documents after the last one.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from odqa.corpus import ChunkSpec, Document, Passage, read_documents
from odqa.corpus.readers import count_documents
from odqa.encode.cluster import RaySettings
from odqa.encode.cutting import Cutter
from odqa.encode.encoders import Encoder, TokenVectors
from odqa.encode.stage import EncodeStage, Encoding
from odqa.encode.vectors import KINDS, SHARD_PASSAGES, VectorsWriter, unfinished_folder
from odqa.errors import InputError, OdqaError
from odqa.fs import LOG


def batches(items: Iterable, size: int) -> Iterator[list]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


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


def write_vectors(
    corpus: str | Path,
    out: str | Path,
    encoder: Encoder,
    *,
    kind: str,
    chunk: ChunkSpec | None = None,
    dtype: str = "float16",
    batch_docs: int = 512,
    input_format: str = "auto",
    shard_passages: int = SHARD_PASSAGES,
    overwrite: bool = False,
    show_progress: bool = False,
    ray: RaySettings | None = None,
    restart: bool = False,
) -> Path:
    """Encode the passages of ``corpus`` with ``encoder`` (the one kind ``kind`` builds
    with) into the vectors folder ``out``; returns its path.

    Passages are cut by the encoder's tokenizer (words without one) with ``chunk``; empty
    documents are skipped, as a build skips them. ``out`` appears only when complete; the
    shards of a run cut short are taken up by the next run of the same job (``restart``:
    start afresh). ``ray``: cut and encode on that Ray cluster.
    """
    if kind not in KINDS:
        raise OdqaError(f"--retriever must be one of {KINDS} for precomputed vectors, got {kind!r}")
    cutter = Cutter.for_encoders([encoder], chunk or ChunkSpec())
    stage = EncodeStage(cutter, {kind: Encoding(encoder)}, ray)
    unfinished = unfinished_folder(Path(out).resolve())
    if restart and unfinished.exists():
        LOG.warning("starting afresh: removing %s", unfinished)
        shutil.rmtree(unfinished)
    writer = VectorsWriter(
        out,
        kind,
        encoder.describe(),
        encoder.dim,
        dtype,
        cutter.record(),
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
        total = count_documents(corpus, input_format) if show_progress else None
        progress = tqdm(
            total=total, initial=done, desc="encoding", unit="doc", disable=not show_progress
        )
        documents = itertools.islice(read_documents(corpus, input_format), done, None)
        say = functools.partial(progress.write, file=sys.stderr)
        read = done
        with stage.running(say) as encoded_batches:
            for batch, encoded in encoded_batches(batches(documents, batch_docs)):
                if encoded.passages:
                    vectors = encoded.encoded[kind]
                    add_in_shards(writer, batch, encoded.passages, vectors, read, shard_passages)
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
    if isinstance(encoded, TokenVectors):
        vectors, doclens = encoded.vectors, encoded.doclens
    else:
        vectors, doclens = encoded, None
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
