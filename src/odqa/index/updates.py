"""Adding and deleting documents in an existing index, without rebuilding it.

An update works on a copy of the index made of hard links (cheap), changes the copy by
writing new files only — never into a linked one — and swaps it into place at the end, so an
update that fails or is interrupted leaves the index as it was.

On ``add``: the collection appends; dense vectors are encoded with the index's model and
appended to faiss; ColBERT passages are compressed with the existing centroids, and the
centroids are re-trained when the index has outgrown them (the report says so); BM25 is
re-indexed from the stored passages (cheap next to neural encoding). On ``delete``: passages
are marked deleted; ColBERT drops them from its inverted file, BM25 and dense skip them at
search time. Deleted text stays on disk until the next full build.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

import odqa.fs as fs
from odqa.corpus import (
    WORDS,
    ChunkSpec,
    Document,
    Passage,
    chunk_documents,
    indexable_text,
    kept_of,
)
from odqa.corpus.schema import id_problem, shown
from odqa.corpus.textio import check_json
from odqa.errors import DuplicateIdError, InputError
from odqa.index.collection import (
    DELETED,
    DOCUMENTS,
    OFFSETS,
    PASSAGES,
    Collection,
    append_doc_ids,
    as_record,
)
from odqa.index.kind import PassageBatch, Runtime
from odqa.index.manifest import Manifest
from odqa.index.metadata import write_metadata
from odqa.index.registry import kind_named
from odqa.models.checkpoint import load_transformer, resolve_model
from odqa.models.device import pick_device


@contextlib.contextmanager
def staged_copy(index_dir: str | Path) -> Iterator[Path]:
    """A hard-linked copy of ``index_dir`` to change; it replaces the index on success."""
    target = Path(index_dir).resolve()
    with fs.writer_lock(target):  # a second writer waits, then changes the first's result
        fs.remove_leftovers(target)
        Manifest.read(target)
        staging = fs.temporary_sibling(target)
        try:
            shutil.copytree(target, staging, copy_function=os.link)
            yield staging
            fs.replace_directory(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def add_documents(
    index_dir: str | Path,
    documents: Iterable[Document],
    *,
    device: str | None = None,
    precision: str = "auto",
) -> dict[str, int | bool]:
    """Add ``documents`` to every retriever of the index; returns counts of what changed.

    Empty documents are skipped and counted; an id already live in the index is refused
    (delete it first to replace it).
    """
    documents = list(documents)
    kept = kept_of(documents)
    with staged_copy(index_dir) as folder:
        manifest = Manifest.read(folder)
        collection = Collection(folder)
        _check_new_ids(collection, kept)
        passages = _chunk(manifest, kept)
        _append_collection(folder, collection, kept, passages)
        collection.close()
        batch = PassageBatch(kept, passages, [indexable_text(passage) for passage in passages])
        report: dict[str, int | bool] = {
            "added_documents": len(kept),
            "added_passages": len(passages),
            "skipped_empty": len(documents) - len(kept),
        }
        runtime = Runtime(device, precision)
        for name, settings in manifest.retrievers.items():
            report.update(kind_named(name).add(folder, settings, batch, runtime))
        manifest.counts["documents"] += len(kept)
        manifest.counts["passages"] += len(passages)
        manifest.counts["skipped_empty"] += len(documents) - len(kept)
        manifest.write(folder)
    return report


def delete_documents(index_dir: str | Path, doc_ids: Iterable[str]) -> dict[str, int]:
    """Delete documents by id from every retriever; unknown ids are refused, naming them."""
    wanted = set(doc_ids)
    with staged_copy(index_dir) as folder:
        manifest = Manifest.read(folder)
        collection = Collection(folder)
        live = live_documents(collection)
        numbers = {
            doc_id: number
            for number, doc_id in enumerate(collection.doc_ids)
            if doc_id in wanted and live[number]
        }
        missing = sorted(wanted - set(numbers))
        if missing:
            raise InputError(f"no live document with id {', '.join(map(repr, missing[:5]))}")
        rows = np.flatnonzero(np.isin(collection.passages[:, 0], list(numbers.values())))
        deleted = np.array(collection.deleted)
        deleted[rows] = True
        collection.close()
        fs.save_array(folder / DELETED, deleted)
        for name, settings in manifest.retrievers.items():
            kind_named(name).delete(folder, settings, rows)
        manifest.counts["documents"] -= len(numbers)
        manifest.counts["passages"] -= len(rows)
        manifest.counts["deleted_documents"] = manifest.counts.get("deleted_documents", 0) + len(
            numbers
        )
        manifest.write(folder)
    return {"deleted_documents": len(numbers), "deleted_passages": len(rows)}


def live_documents(collection: Collection) -> np.ndarray:
    """Per document number: whether any of its passages is not deleted."""
    owners = np.asarray(collection.passages[:, 0])[~collection.deleted]
    return np.bincount(owners, minlength=collection.num_documents) > 0


def _check_new_ids(collection: Collection, documents: list[Document]) -> None:
    """New ids must follow the readers' id rule and not be live in the index already."""
    alive = live_documents(collection)
    live = {doc_id for number, doc_id in enumerate(collection.doc_ids) if alive[number]}
    seen: set[str] = set()
    for number, document in enumerate(documents):
        problem = id_problem(document.id) if isinstance(document.id, str) else "is not a string"
        if problem is not None:
            raise InputError(
                f"document {number + 1}: id {shown(str(document.id))} {problem}", field="id"
            )
        try:
            check_json(as_record(document))
        except InputError as exc:
            raise InputError(f"document {number + 1}: {exc}") from None
        if document.id in live or document.id in seen:
            raise DuplicateIdError(
                f"document id {document.id!r} is already in the index", field="id"
            )
        seen.add(document.id)


def _chunk(manifest: Manifest, documents: list[Document]) -> list[Passage]:
    """Cut the new documents exactly as the index's documents were cut."""
    chunking = manifest.chunking
    if chunking["tokenizer"] == WORDS.name:
        tokenizer = WORDS
    else:
        tokenizer, _ = load_transformer(
            resolve_model(chunking["tokenizer"]).path, pick_device("cpu")
        )
    spec = ChunkSpec(tokens=chunking["tokens"], overlap=chunking["overlap"])
    return list(chunk_documents(documents, tokenizer, spec))


def _append_collection(
    folder: Path, collection: Collection, documents: list[Document], passages: list[Passage]
) -> None:
    first = collection.num_documents
    number = {document.id: first + i for i, document in enumerate(documents)}
    lines = [(json.dumps(as_record(d), ensure_ascii=False) + "\n").encode() for d in documents]
    with fs.atomic_file(folder / DOCUMENTS) as partial:  # a new file: the linked one stays
        shutil.copyfile(folder / DOCUMENTS, partial)
        with partial.open("ab") as handle:
            handle.writelines(lines)
    offsets = np.asarray(collection.offsets)
    ends = offsets[-1] + np.cumsum([len(line) for line in lines], dtype=np.int64)
    fs.save_array(folder / OFFSETS, np.concatenate([offsets, ends]))
    rows = np.asarray(
        [(number[p.doc_id], p.chunk, p.start, p.end) for p in passages], dtype=np.int64
    ).reshape(-1, 4)
    fs.save_array(folder / PASSAGES, np.concatenate([np.asarray(collection.passages), rows]))
    fs.save_array(folder / DELETED, np.concatenate([collection.deleted, np.zeros(len(rows), bool)]))
    append_doc_ids(folder, collection.doc_ids, [document.id for document in documents])
    write_metadata(folder, itertools.chain(collection.documents(), [documents]))
