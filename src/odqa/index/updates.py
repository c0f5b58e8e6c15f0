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
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import odqa.fs as fs
from odqa.corpus import Document, kept_of
from odqa.corpus.schema import id_problem, shown
from odqa.corpus.textio import check_json
from odqa.encode import Cutter, EncodedBatch, EncodeStage, Encoding
from odqa.errors import DuplicateIdError, InputError, OdqaError
from odqa.index.collection import Collection, CollectionUpdate, as_record
from odqa.index.kind import Runtime
from odqa.index.manifest import FORMAT_VERSION, Manifest
from odqa.index.registry import kind_named


@dataclass
class Staged:
    """An update's copy of an index (``folder``, its files hard links to the index's own),
    its manifest to change, and what the manifest's inventory was (files left as they were
    keep their sha256: only what the update writes is hashed)."""

    folder: Path
    target: Path
    manifest: Manifest

    def __post_init__(self) -> None:
        self._inventory = self.manifest.files

    def commit(self) -> None:
        """Write the manifest last: the copy is then whole (an index of this format, since
        what the update wrote is)."""
        self.manifest.format_version = FORMAT_VERSION
        self.manifest.write(self.folder, linked_from=(self.target, self._inventory))


@contextlib.contextmanager
def staged_copy(index_dir: str | Path) -> Iterator[Staged]:
    """A hard-linked copy of ``index_dir`` to change; it replaces the index on success.
    The body changes it by writing new files only, and calls :meth:`Staged.commit` last."""
    target = Path(index_dir).resolve()
    with fs.writer_lock(target):  # a second writer waits, then changes the first's result
        fs.remove_leftovers(target)
        Manifest.read(target)
        staging = fs.temporary_sibling(target)
        try:
            shutil.copytree(target, staging, copy_function=os.link)
            yield Staged(staging, target, Manifest.read(staging))
            fs.replace_directory(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def add_documents(
    index_dir: str | Path,
    documents: Iterable[Document],
    *,
    upsert: bool = False,
    device: str | None = None,
    precision: str = "auto",
    show_progress: bool = False,
) -> dict[str, int | bool]:
    """Add ``documents`` to every retriever of the index; returns counts of what changed.

    Empty documents are skipped and counted. An id already live in the index is refused,
    unless ``upsert``: then that document is replaced (deleted, and the new one added, in
    the same update). The new passages are cut and encoded as the index's were (the encode
    stage, with the chunking and encoders the manifest records). What it costs grows with
    the documents added, not with the index (:mod:`odqa.index.collection` segments; each
    kind writes files of its own for them). ``show_progress`` puts a re-clustering that the
    add sets off (ColBERT, past twice its trained tokens) on a progress bar.
    """
    documents = list(documents)
    kept = kept_of(documents)
    with staged_copy(index_dir) as staged:
        folder, manifest = staged.folder, staged.manifest
        collection = Collection(folder)
        try:
            replaced = _check_new_ids(collection, kept, upsert)
        finally:
            collection.close()
        report: dict[str, int | bool] = {}
        if replaced:
            report.update(_delete(staged, replaced))
            report["replaced_documents"] = report.pop("deleted_documents")
            report.pop("deleted_passages")
        runtime = Runtime(device, precision, show_progress=show_progress)
        batch = _encoded(folder, manifest, kept, runtime)
        first_row = CollectionUpdate(folder).append(batch.documents, batch.passages)
        report |= {
            "added_documents": len(kept),
            "added_passages": len(batch.passages),
            "skipped_empty": len(documents) - len(kept),
        }
        for name, record in manifest.retrievers.items():
            report.update(kind_named(name).add(folder, record, batch, runtime, first_row))
        manifest.counts["documents"] += len(kept)
        manifest.counts["passages"] += len(batch.passages)
        manifest.counts["skipped_empty"] += len(documents) - len(kept)
        staged.commit()
    return report


def _encoded(
    folder: Path, manifest: Manifest, documents: list[Document], runtime: Runtime
) -> EncodedBatch:
    """The documents cut and encoded as the index's own were, in one batch."""
    encodings = {}
    for name, record in manifest.retrievers.items():
        encoder = kind_named(name).recorded_encoder(folder, record, runtime)
        if encoder is not None:
            encodings[name] = Encoding(encoder)
    cutter = Cutter.recorded(manifest.chunking, [e.encoder for e in encodings.values()])
    stage = EncodeStage(cutter, encodings)
    with stage.running() as encoded_batches:
        ((_, batch),) = list(encoded_batches([documents]))
    return batch


def delete_documents(
    index_dir: str | Path, doc_ids: Iterable[str], *, missing_ok: bool = False
) -> dict[str, int]:
    """Delete documents by id from every retriever. Ids that are not live documents of the
    index are refused, naming a few (nothing is deleted), unless ``missing_ok``: then they
    are counted (``unknown_ids``) and the others deleted. The deleted passages' files stay
    until the index is rebuilt; searches and statistics leave them out at once."""
    wanted = list(dict.fromkeys(doc_ids))
    with staged_copy(index_dir) as staged:
        report = _delete(staged, wanted, missing_ok)
        staged.commit()
    return report


def _delete(staged: Staged, wanted: list[str], missing_ok: bool = False) -> dict[str, int]:
    """Delete the live documents ``wanted`` in an update's copy; the report."""
    manifest = staged.manifest
    numbers, rows = CollectionUpdate(staged.folder).delete(wanted)
    unknown = [doc_id for doc_id in wanted if doc_id not in numbers]
    if unknown and not missing_ok:
        shown = ", ".join(map(repr, unknown[:5]))
        more = f" and {len(unknown) - 5:,} more" if len(unknown) > 5 else ""
        raise InputError(f"no live document with id {shown}{more}")
    report = {"deleted_documents": len(numbers), "deleted_passages": len(rows)}
    if unknown:
        report["unknown_ids"] = len(unknown)
    for name, record in manifest.retrievers.items():
        report.update(kind_named(name).delete(staged.folder, record, rows) or {})
    manifest.counts["documents"] -= len(numbers)
    manifest.counts["passages"] -= len(rows)
    deleted_before = manifest.counts.get("deleted_documents", 0)
    manifest.counts["deleted_documents"] = deleted_before + len(numbers)
    return report


def compact_index(index_dir: str | Path) -> dict[str, int]:
    """Merge what updates left apart, kind by kind (BM25: every segment into one, without
    the deleted rows' postings; dense: the added segments into one); what it costs grows
    with the index. Searches give the same results before and after. The merged files are
    written beside the old ones until the swap: refused, saying so, when the disk has not
    room for them."""
    target = Path(index_dir).resolve()
    manifest = Manifest.read(target)
    needed = sum(
        kind_named(name).compact_bytes(target, record)
        for name, record in manifest.retrievers.items()
    )
    free = shutil.disk_usage(target).free
    if needed > free:
        raise OdqaError(
            f"{target}: compacting writes about {needed / 2**30:.1f} GiB beside the index "
            f"before it is swapped in, and the disk has {free / 2**30:.1f} GiB free"
        )
    with staged_copy(index_dir) as staged:
        report: dict[str, int] = {}
        for name, record in staged.manifest.retrievers.items():
            report.update(kind_named(name).compact(staged.folder, record))
        staged.commit()
    report["bytes_written"] = needed
    return report


def _check_new_ids(
    collection: Collection, documents: list[Document], upsert: bool = False
) -> list[str]:
    """New ids must follow the readers' id rule and not be live in the index already (found
    through the collection's sorted digests: no id of the index is read but candidates);
    with ``upsert``, those live already are returned, to be replaced."""
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
        if document.id in seen:
            raise DuplicateIdError(f"document id {document.id!r} is given twice", field="id")
        seen.add(document.id)
    live = collection.numbers_of(seen)
    if live and not upsert:
        first = next(document.id for document in documents if document.id in live)
        raise DuplicateIdError(
            f"document id {first!r} is already in the index (upsert replaces it)", field="id"
        )
    return [document.id for document in documents if document.id in live]
