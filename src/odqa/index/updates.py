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
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path

import faiss
import numpy as np

from odqa.corpus import ChunkSpec, Document, Passage, chunk_documents, is_empty
from odqa.errors import InputError
from odqa.fs import replace_directory
from odqa.index.analysis import analyzer_from_config
from odqa.index.bm25 import BM25Builder
from odqa.index.builder import chunking_tokenizer, indexable_text
from odqa.index.colbert import LATE_FOLDER
from odqa.index.collection import DELETED, DOC_IDS, DOCUMENTS, OFFSETS, PASSAGES, Collection
from odqa.index.dense import INDEX_FILE
from odqa.index.late import add_passages, delete_passages, recluster
from odqa.index.manifest import Manifest
from odqa.retrieve.searcher import Searcher


@contextlib.contextmanager
def staged_copy(index_dir: str | Path) -> Iterator[Path]:
    """A hard-linked copy of ``index_dir`` to change; it replaces the index on success."""
    target = Path(index_dir).resolve()
    Manifest.read(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.updating-", dir=target.parent))
    try:
        copy = staging / "index"
        shutil.copytree(target, copy, copy_function=os.link)
        yield copy
        replace_directory(copy, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` to a new file renamed over ``path``."""
    partial = path.with_name(f".partial.{path.name}")
    np.save(partial, array)
    os.replace(partial, path)


def _write_text(path: Path, text: str) -> None:
    partial = path.with_name(f".partial.{path.name}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


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
    kept = [document for document in documents if not is_empty(document)]
    with staged_copy(index_dir) as folder:
        searcher = Searcher(folder, device=device, precision=precision)
        manifest = searcher.manifest
        _check_new_ids(searcher, kept)
        passages = _chunk(searcher, kept)
        texts = [indexable_text(passage) for passage in passages]
        _append_collection(folder, searcher, kept, passages)
        report: dict[str, int | bool] = {
            "added_documents": len(kept),
            "added_passages": len(passages),
            "skipped_empty": len(documents) - len(kept),
        }
        if "dense" in manifest.retrievers and texts:
            _add_dense(folder, searcher, texts)
        if "colbert" in manifest.retrievers and texts:
            report["reclustered"] = _add_colbert(folder, searcher, texts)
        if "bm25" in manifest.retrievers:
            _rebuild_bm25(folder, manifest)
        manifest.counts["documents"] += len(kept)
        manifest.counts["passages"] += len(passages)
        manifest.counts["skipped_empty"] += len(documents) - len(kept)
        manifest.write(folder)
        searcher.collection.close()
    return report


def delete_documents(index_dir: str | Path, doc_ids: Iterable[str]) -> dict[str, int]:
    """Delete documents by id from every retriever; unknown ids are refused, naming them."""
    wanted = set(doc_ids)
    with staged_copy(index_dir) as folder:
        searcher = Searcher(folder)
        collection = searcher.collection
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
        _save_array(folder / DELETED, deleted)
        if "colbert" in searcher.manifest.retrievers:
            delete_passages(folder / LATE_FOLDER, rows.tolist())
        manifest = searcher.manifest
        manifest.counts["documents"] -= len(numbers)
        manifest.counts["passages"] -= len(rows)
        manifest.counts["deleted_documents"] = manifest.counts.get("deleted_documents", 0) + len(
            numbers
        )
        manifest.write(folder)
        collection.close()
    return {"deleted_documents": len(numbers), "deleted_passages": len(rows)}


def live_documents(collection: Collection) -> np.ndarray:
    """Per document number: whether any of its passages is not deleted."""
    owners = np.asarray(collection.passages[:, 0])[~collection.deleted]
    return np.bincount(owners, minlength=collection.num_documents) > 0


def _check_new_ids(searcher: Searcher, documents: list[Document]) -> None:
    collection = searcher.collection
    alive = live_documents(collection)
    live = {doc_id for number, doc_id in enumerate(collection.doc_ids) if alive[number]}
    seen: set[str] = set()
    for document in documents:
        if document.id in live or document.id in seen:
            raise InputError(f"document id {document.id!r} is already in the index", field="id")
        seen.add(document.id)


def _chunk(searcher: Searcher, documents: list[Document]) -> list[Passage]:
    """Cut the new documents exactly as the index's documents were cut."""
    chunking = searcher.manifest.chunking
    tokenizer, _ = chunking_tokenizer(chunking["tokenizer"], None, None)
    spec = ChunkSpec(tokens=chunking["tokens"], overlap=chunking["overlap"])
    return list(chunk_documents(documents, tokenizer, spec))


def _append_collection(
    folder: Path, searcher: Searcher, documents: list[Document], passages: list[Passage]
) -> None:
    collection = searcher.collection
    first = collection.num_documents
    number = {document.id: first + i for i, document in enumerate(documents)}
    lines = [(json.dumps(asdict(d), ensure_ascii=False) + "\n").encode() for d in documents]
    partial = folder / f".partial.{DOCUMENTS}"
    shutil.copyfile(folder / DOCUMENTS, partial)  # a new file: the linked one stays as it was
    with partial.open("ab") as handle:
        handle.writelines(lines)
    os.replace(partial, folder / DOCUMENTS)
    offsets = np.asarray(collection.offsets)
    ends = offsets[-1] + np.cumsum([len(line) for line in lines], dtype=np.int64)
    _save_array(folder / OFFSETS, np.concatenate([offsets, ends]))
    rows = np.asarray(
        [(number[p.doc_id], p.chunk, p.start, p.end) for p in passages], dtype=np.int64
    ).reshape(-1, 4)
    _save_array(folder / PASSAGES, np.concatenate([np.asarray(collection.passages), rows]))
    _save_array(folder / DELETED, np.concatenate([collection.deleted, np.zeros(len(rows), bool)]))
    ids = collection.doc_ids + [document.id for document in documents]
    _write_text(folder / DOC_IDS, json.dumps(ids, ensure_ascii=False))


def _add_dense(folder: Path, searcher: Searcher, texts: list[str]) -> None:
    retriever = searcher.retriever("dense")
    index = retriever.index.index
    index.add(retriever.encoder.encode_documents(texts))
    path = folder / "dense" / INDEX_FILE
    partial = path.with_name(f".partial.{INDEX_FILE}")
    faiss.write_index(index, str(partial))
    os.replace(partial, path)


def _add_colbert(folder: Path, searcher: Searcher, texts: list[str]) -> bool:
    """Compress the new passages with the existing centroids; re-cluster when outgrown."""
    encoder = searcher.retriever("colbert").encoder
    embeddings, doclens = encoder.encode_documents(texts)
    result = add_passages(folder / LATE_FOLDER, embeddings, doclens, device=encoder.device)
    if result.recluster_advised:
        recluster(folder / LATE_FOLDER, device=encoder.device)
    return result.recluster_advised


def _rebuild_bm25(folder: Path, manifest: Manifest) -> None:
    """Re-index BM25 over every stored passage (deleted ones stay, skipped at search)."""
    settings = manifest.retrievers["bm25"]
    collection = Collection(folder)
    builder = BM25Builder(analyzer_from_config(settings["analyzer"]))
    rows = range(collection.num_passages)
    for start in range(0, len(rows), 4096):
        builder.add([indexable_text(collection.passage(r)) for r in rows[start : start + 4096]])
    collection.close()
    shutil.rmtree(folder / "bm25")
    builder.save(folder / "bm25", settings["method"], settings["k1"], settings["b"])
    settings["vocabulary"] = len(builder.vocab)
