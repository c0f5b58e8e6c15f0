"""The collection kept inside an index: documents and their passages, read back lazily.

Files: ``documents.jsonl`` (one document per line, as given), ``documents.offsets.npy``
(byte offset of each line, memory-mapped), ``passages.npy`` (one row per passage:
document number, chunk number, start and end character offsets in the document text) and
``doc_ids.txt`` (each document's id on its own line, in storage order: ids hold no
whitespace) with ``doc_ids.offsets.npy`` (where each line starts), both memory-mapped
(indexes of format 1 have ``doc_ids.json``, a JSON list, read whole). The writer streams:
memory does not grow with the corpus.

Opening a collection checks what it can tell of itself at the cost of a few stats and array
headers: every file there, the arrays readable and of the right shapes, the offsets ending
where ``documents.jsonl`` ends. A damaged one is an :class:`IndexFormatError` naming the file.

A collection belongs to the directory it opened: what it opens later (ids, metadata columns)
is checked to come from that same directory, not from one another writer swapped in at its
path since (:class:`~odqa.errors.IndexReplacedError`), so two indexes are never mixed.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

import odqa.fs as fs
from odqa.corpus.records import Document, Passage
from odqa.errors import IndexFormatError, IndexReplacedError, InputError
from odqa.index.metadata import MetadataColumns, MetadataWriter, write_metadata

DOCUMENTS = "documents.jsonl"
OFFSETS = "documents.offsets.npy"
PASSAGES = "passages.npy"
DOC_IDS = "doc_ids.txt"
DOC_ID_OFFSETS = "doc_ids.offsets.npy"
OLD_DOC_IDS = "doc_ids.json"
PASSAGE_COLUMNS = 4
DELETED = "deleted.npy"
REBUILD = "rebuild the index with `odqa index CORPUS {folder} --overwrite`"


class DamagedIndexError(IndexFormatError):
    """An index whose files are not what was written: ``problems`` says what differs."""

    def __init__(self, folder: Path, problems: list[str], advice: str) -> None:
        self.folder = folder
        self.problems = problems
        super().__init__(f"{folder}: damaged index: {'; '.join(problems)}; {advice}")


def damaged(folder: Path, problem: str) -> DamagedIndexError:
    """The one-line error for a damaged collection: the index, what is wrong, what to do."""
    return DamagedIndexError(folder, [problem], REBUILD.format(folder=folder))


def load_array(folder: Path, name: str, mmap: bool = True) -> np.ndarray:
    """``np.load`` one of the collection's arrays; a missing or unreadable one is an error."""
    path = folder / name
    if not path.is_file():
        raise damaged(folder, f"{name} is missing")
    try:
        return np.load(path, mmap_mode="r" if mmap else None)
    except (ValueError, OSError, EOFError) as exc:
        raise damaged(folder, f"{name} is unreadable ({exc})") from exc


def as_record(document: Document) -> dict:
    """The document as the JSON object stored for it (``dataclasses.asdict`` without its
    deep copy, which costs more than the rest of storing)."""
    return {
        "id": document.id,
        "text": document.text,
        "title": document.title,
        "metadata": document.metadata,
    }


class CollectionWriter:
    """Appends documents and passages to a collection folder, streaming: lines, offsets,
    passage rows and ids go to files as they come; only the current batch's document numbers
    are kept."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._documents = (folder / DOCUMENTS).open("wb")
        self._ids = (folder / DOC_IDS).open("wb")
        self._offsets = fs.NpyAppender(folder / OFFSETS, np.int64)
        self._passages = fs.NpyAppender(folder / PASSAGES, np.int64, (PASSAGE_COLUMNS,))
        self._id_offsets = fs.NpyAppender(folder / DOC_ID_OFFSETS, np.int64)
        self._metadata = MetadataWriter(folder)
        self._batch_numbers: dict[str, int] = {}
        self.num_documents = 0
        self.num_passages = 0

    def add_documents(self, documents: Sequence[Document]) -> None:
        """Append documents; the next ``add_passages`` may name them (and only them)."""
        lines = [(json.dumps(as_record(d), ensure_ascii=False) + "\n").encode() for d in documents]
        _append_lines(self._documents, self._offsets, lines)
        _append_lines(self._ids, self._id_offsets, [f"{d.id}\n".encode() for d in documents])
        self._metadata.add(documents)
        first = self.num_documents
        self._batch_numbers = {d.id: first + i for i, d in enumerate(documents)}
        self.num_documents += len(documents)

    @property
    def stored_bytes(self) -> int:
        """Bytes of documents and ids written so far."""
        return self._documents.tell() + self._ids.tell()

    def add_passages(self, passages: Sequence[Passage]) -> None:
        number = self._batch_numbers
        rows = [(number[p.doc_id], p.chunk, p.start, p.end) for p in passages]
        self._passages.append(np.asarray(rows, dtype=np.int64).reshape(-1, PASSAGE_COLUMNS))
        self.num_passages += len(rows)

    def close(self) -> tuple[int, int]:
        """Finish the files; returns (documents, passages)."""
        self._offsets.append(np.asarray([self._documents.tell()], np.int64))
        self._id_offsets.append(np.asarray([self._ids.tell()], np.int64))
        self._documents.close()
        self._ids.close()
        for array in (self._offsets, self._passages, self._id_offsets):
            array.close()
        self._metadata.close()
        return self.num_documents, self.num_passages


def line_starts(start: int, lines: Sequence[bytes]) -> np.ndarray:
    """Where each of ``lines`` starts when written from byte ``start`` on."""
    return start + np.cumsum([0] + [len(line) for line in lines[:-1]], dtype=np.int64)[: len(lines)]


def _append_lines(handle: BinaryIO, starts: fs.NpyAppender, lines: Sequence[bytes]) -> None:
    """Write ``lines`` to ``handle`` and where each starts to ``starts``."""
    starts.append(line_starts(handle.tell(), lines))
    handle.writelines(lines)


class DocIds(Sequence[str]):
    """The documents' ids by number: ``doc_ids.txt`` and its line offsets, memory-mapped."""

    def __init__(self, folder: Path, count: int) -> None:
        self._offsets = load_array(folder, DOC_ID_OFFSETS)
        size = (folder / DOC_IDS).stat().st_size
        if self._offsets.shape != (count + 1,) or int(self._offsets[-1]) != size:
            raise damaged(
                folder,
                f"{DOC_ID_OFFSETS} has shape {self._offsets.shape} ending at "
                f"{int(self._offsets[-1]) if len(self._offsets) else 0:,}; expected "
                f"({count + 1},) ending at {size:,} ({DOC_IDS})",
            )
        self._bytes = np.memmap(folder / DOC_IDS, dtype=np.uint8, mode="r") if size else b""

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, number: int) -> str:  # type: ignore[override]
        start, end = int(self._offsets[number]), int(self._offsets[number + 1]) - 1
        return bytes(self._bytes[start:end]).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        for number in range(len(self)):
            yield self[number]


class Collection:
    """Random access to the documents and passages of an index.

    ``identity``: the directory's (:func:`odqa.fs.directory_identity`) when the caller read
    something of it before (its manifest); by default, taken now."""

    def __init__(self, folder: Path, identity: tuple[int, int] | None = None) -> None:
        self.folder = folder
        self.identity = identity or fs.directory_identity(folder)
        self._offsets = load_array(folder, OFFSETS)
        self.passages = load_array(folder, PASSAGES)
        path = folder / DELETED
        self.deleted = (
            load_array(folder, DELETED, mmap=False)
            if path.exists()
            else np.zeros(len(self.passages), bool)
        )
        self._check_shapes()
        if not (folder / DOC_IDS).is_file() and not (folder / OLD_DOC_IDS).is_file():
            raise damaged(folder, f"{DOC_IDS} is missing")
        try:
            self._handle = (folder / DOCUMENTS).open("rb")
        except FileNotFoundError as exc:
            raise damaged(folder, f"{DOCUMENTS} is missing") from exc
        size = os.fstat(self._handle.fileno()).st_size
        if size != int(self._offsets[-1]):
            self._handle.close()
            raise damaged(
                folder,
                f"{DOCUMENTS} has {size:,} bytes, its offsets end at {int(self._offsets[-1]):,}",
            )
        self._doc_ids: Sequence[str] | None = None
        self._metadata: MetadataColumns | None = None
        self._owners: np.ndarray | None = None
        self.num_deleted = int(self.deleted.sum())
        try:
            self.check_unchanged()
        except IndexReplacedError:
            self._handle.close()
            raise

    def check_unchanged(self) -> None:
        """Refuse to go on when the directory at the collection's path is no longer the one
        it opened: call it after opening more of the index, so nothing of two is mixed."""
        if fs.directory_identity(self.folder) != self.identity:
            raise IndexReplacedError(
                f"{self.folder} was replaced since it was opened (rebuilt, or updated by "
                "another writer); open it again to read the new index"
            )

    def _check_shapes(self) -> None:
        """The arrays' shapes agree with each other (their headers only: no data is read)."""
        if self._offsets.ndim != 1 or len(self._offsets) == 0:
            raise damaged(self.folder, f"{OFFSETS} has shape {self._offsets.shape}, not (n + 1,)")
        if self.passages.ndim != 2 or self.passages.shape[1] != 4:
            raise damaged(self.folder, f"{PASSAGES} has shape {self.passages.shape}, not (n, 4)")
        if self.deleted.shape != (len(self.passages),):
            raise damaged(
                self.folder,
                f"{DELETED} marks {len(self.deleted):,} passages, {PASSAGES} has "
                f"{len(self.passages):,}",
            )

    @property
    def doc_ids(self) -> Sequence[str]:
        """Document ids in storage order (opened on first use)."""
        if self._doc_ids is None:
            if (self.folder / DOC_IDS).is_file():
                doc_ids: Sequence[str] = DocIds(self.folder, self.num_documents)
            else:
                doc_ids = self._old_doc_ids()
            self.check_unchanged()
            self._doc_ids = doc_ids
        return self._doc_ids

    def _old_doc_ids(self) -> list[str]:
        """The ids of a format-1 index: one JSON list."""
        path = self.folder / OLD_DOC_IDS
        try:
            ids = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise damaged(self.folder, f"{OLD_DOC_IDS} is unreadable ({exc})") from exc
        if not isinstance(ids, list) or len(ids) != self.num_documents:
            count = len(ids) if isinstance(ids, list) else "no"
            raise damaged(
                self.folder, f"{OLD_DOC_IDS} lists {count} ids for {self.num_documents:,} documents"
            )
        return ids

    @property
    def metadata(self) -> MetadataColumns:
        """The documents' metadata columns, for filters (opened on first use)."""
        if self._metadata is None:
            metadata = MetadataColumns(self.folder, self.num_documents)
            self.check_unchanged()
            self._metadata = metadata
        return self._metadata

    @property
    def owners(self) -> np.ndarray:
        """Each passage row's document number (read once, on first use)."""
        if self._owners is None:
            self._owners = np.ascontiguousarray(self.passages[:, 0])
        return self._owners

    def documents(self, batch: int = 4096) -> Iterator[list[Document]]:
        """Every stored document, in order, a batch at a time."""
        for first in range(0, self.num_documents, batch):
            last = min(first + batch, self.num_documents)
            yield [self.document(number) for number in range(first, last)]

    @property
    def offsets(self) -> np.ndarray:
        """Byte offset of each document line, and the file's end (memory-mapped)."""
        return self._offsets

    @property
    def num_documents(self) -> int:
        return len(self._offsets) - 1

    @property
    def num_passages(self) -> int:
        return len(self.passages)

    def document(self, number: int) -> Document:
        """The document stored as number ``number`` (0-based)."""
        start, end = int(self._offsets[number]), int(self._offsets[number + 1])
        self._handle.seek(start)
        line = self._handle.read(end - start)
        try:
            record = json.loads(line)
            return Document(**record)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
            where = f"{DOCUMENTS}:{number + 1} (bytes {start:,}-{end:,})"
            raise damaged(self.folder, f"{where} is not the document stored there") from exc

    def passage(self, row: int) -> Passage:
        """The passage in row ``row``, its text cut from its document."""
        doc_number, chunk, start, end = (int(value) for value in self.passages[row])
        document = self.document(doc_number)
        return Passage(document.id, chunk, document.text[start:end], document.title, start, end)

    def live_documents(self) -> np.ndarray:
        """Per document number: whether any of its passages is not deleted."""
        owners = np.asarray(self.passages[:, 0])[~self.deleted]
        return np.bincount(owners, minlength=self.num_documents) > 0

    def close(self) -> None:
        self._handle.close()


class CollectionUpdate:
    """Changes to the collection of an update's copy of an index: every file it changes is
    written anew and renamed into place, never written into (the copy's files are hard
    links to the index's own)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def append(self, documents: Sequence[Document], passages: Sequence[Passage]) -> None:
        """Append ``documents`` and their ``passages`` (of those documents only)."""
        folder = self.folder
        collection = Collection(folder)
        try:
            first = collection.num_documents
            number = {document.id: first + i for i, document in enumerate(documents)}
            lines = [
                (json.dumps(as_record(d), ensure_ascii=False) + "\n").encode() for d in documents
            ]
            with fs.atomic_file(folder / DOCUMENTS) as partial:
                shutil.copyfile(folder / DOCUMENTS, partial)
                with partial.open("ab") as handle:
                    handle.writelines(lines)
            offsets = np.asarray(collection.offsets)
            ends = offsets[-1] + np.cumsum([len(line) for line in lines], dtype=np.int64)
            fs.save_array(folder / OFFSETS, np.concatenate([offsets, ends]))
            rows = np.asarray(
                [(number[p.doc_id], p.chunk, p.start, p.end) for p in passages], dtype=np.int64
            ).reshape(-1, PASSAGE_COLUMNS)
            fs.save_array(
                folder / PASSAGES, np.concatenate([np.asarray(collection.passages), rows])
            )
            added = np.zeros(len(rows), bool)
            fs.save_array(folder / DELETED, np.concatenate([collection.deleted, added]))
            ids = [f"{doc_id}\n".encode() for doc_id in [*collection.doc_ids, *number]]
            fs.write_bytes(folder / DOC_IDS, b"".join(ids))
            ends = np.append(line_starts(0, ids), sum(len(line) for line in ids))
            fs.save_array(folder / DOC_ID_OFFSETS, ends)
            write_metadata(folder, itertools.chain(collection.documents(), [documents]))
        finally:
            collection.close()

    def delete(self, doc_ids: Iterable[str]) -> tuple[dict[str, int], np.ndarray]:
        """Mark the passages of the live documents ``doc_ids`` deleted; returns their numbers
        by id and the passage rows. Unknown (or deleted) ids are refused, naming them."""
        wanted = set(doc_ids)
        collection = Collection(self.folder)
        try:
            live = collection.live_documents()
            numbers = {
                doc_id: number
                for number, doc_id in enumerate(collection.doc_ids)
                if doc_id in wanted and live[number]
            }
            missing = sorted(wanted - set(numbers))
            if missing:
                shown = ", ".join(map(repr, missing[:5]))
                raise InputError(f"no live document with id {shown}")
            rows = np.flatnonzero(np.isin(collection.passages[:, 0], list(numbers.values())))
            deleted = np.array(collection.deleted)
            deleted[rows] = True
        finally:
            collection.close()
        fs.save_array(self.folder / DELETED, deleted)
        return numbers, rows
