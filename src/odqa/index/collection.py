"""The collection kept inside an index: documents and their passages, read back lazily.

A collection is one or more **segments**: the index folder itself (the build's), then one
folder a later addition, ``segments/00001/``, ``segments/00002/``, …, in order. A segment
holds ``documents.jsonl`` (one document per line, as given), ``documents.offsets.npy`` (byte
offset of each line, and the file's end, memory-mapped), ``passages.npy`` (one row per
passage: document number — counted across the whole collection —, chunk number, start and
end character offsets in the document text), ``doc_ids.txt`` (each document's id on its own
line: ids hold no whitespace) with ``doc_ids.offsets.npy`` (where each line starts),
``doc_ids.digests.npy`` (the ids' 64-bit digests, sorted, with their document numbers: an
id is found without reading them all) and ``metadata/`` (the columns filters read,
:mod:`odqa.index.metadata`). Documents and passages are numbered across the segments in
order. ``deleted.npy`` in the index folder marks deleted passages, one flag a passage of
the collection when it was last written (rows added since have no flag: none is deleted).
Indexes of format 1 have one segment, with ``doc_ids.json`` (a JSON list, read whole) for
ids.

Adding documents writes a new segment and never touches the others (:class:`CollectionUpdate`):
what an addition costs grows with the addition, not with the collection. The writer streams:
memory does not grow with the corpus.

Opening a collection checks what it can tell of itself at the cost of a few stats and array
headers: every file there, the arrays readable and of the right shapes, the offsets ending
where each ``documents.jsonl`` ends. A damaged one is an :class:`IndexFormatError` naming the
file.

A collection belongs to the directory it opened: what it opens later (ids, metadata columns)
is checked to come from that same directory, not from one another writer swapped in at its
path since (:class:`~odqa.errors.IndexReplacedError`), so two indexes are never mixed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

import odqa.fs as fs
from odqa.corpus.records import Document, Passage
from odqa.errors import IndexFormatError, IndexReplacedError
from odqa.index.metadata import JoinedColumns, MetadataColumns, MetadataWriter

DOCUMENTS = "documents.jsonl"
OFFSETS = "documents.offsets.npy"
PASSAGES = "passages.npy"
DOC_IDS = "doc_ids.txt"
DOC_ID_OFFSETS = "doc_ids.offsets.npy"
DIGESTS = "doc_ids.digests.npy"
OLD_DOC_IDS = "doc_ids.json"
PASSAGE_COLUMNS = 4
DELETED = "deleted.npy"
SEGMENTS = "segments"
DIGEST = np.dtype([("digest", "<i8"), ("number", "<i8")])
REBUILD = "rebuild the index with `odqa index CORPUS {folder} --overwrite`"


def deleted_flags(index: Path, rows: int | None = None) -> np.ndarray | None:
    """The collection's deleted flags, one a passage row (``deleted.npy``; with ``rows``,
    padded to that many), for a kind that reads them itself; None before anything was
    deleted."""
    path = index / DELETED
    if not path.exists():
        return None
    try:
        flags = np.load(path)
    except (ValueError, OSError, EOFError) as exc:
        raise damaged(index, f"{DELETED} is unreadable ({exc})") from exc
    if rows is not None and len(flags) < rows:
        flags = np.concatenate([flags, np.zeros(rows - len(flags), bool)])
    return flags


class DamagedIndexError(IndexFormatError):
    """An index whose files are not what was written: ``problems`` says what differs."""

    def __init__(self, folder: Path, problems: list[str], advice: str) -> None:
        self.folder = folder
        self.problems = problems
        super().__init__(f"{folder}: damaged index: {'; '.join(problems)}; {advice}")


def damaged(folder: Path, problem: str) -> DamagedIndexError:
    """The one-line error for a damaged collection: the index, what is wrong, what to do."""
    return DamagedIndexError(folder, [problem], REBUILD.format(folder=folder))


def segment_folders(index: Path) -> list[Path]:
    """The collection's segments, in order: the index folder, then ``segments/*``."""
    extra = index / SEGMENTS
    later = sorted(path for path in extra.iterdir() if path.is_dir()) if extra.is_dir() else []
    return [index, *later]


def id_digest(doc_id: str) -> int:
    """An id's 64-bit digest (BLAKE2b): what ``doc_ids.digests.npy`` sorts by."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def sorted_digests(ids: Iterable[str], first: int) -> np.ndarray:
    """The digests of ``ids`` (numbered from ``first``), sorted, as ``doc_ids.digests.npy``."""
    digests = np.fromiter((id_digest(doc_id) for doc_id in ids), dtype=np.int64)
    table = np.empty(len(digests), DIGEST)
    table["digest"] = digests
    table["number"] = np.arange(first, first + len(digests), dtype=np.int64)
    return np.sort(table, order=["digest", "number"])


def as_record(document: Document) -> dict:
    """The document as the JSON object stored for it (``dataclasses.asdict`` without its
    deep copy, which costs more than the rest of storing)."""
    return {
        "id": document.id,
        "text": document.text,
        "title": document.title,
        "metadata": document.metadata,
    }


def line_starts(start: int, lines: Sequence[bytes]) -> np.ndarray:
    """Where each of ``lines`` starts when written from byte ``start`` on."""
    return start + np.cumsum([0] + [len(line) for line in lines[:-1]], dtype=np.int64)[: len(lines)]


def _append_lines(handle: BinaryIO, starts: fs.NpyAppender, lines: Sequence[bytes]) -> None:
    """Write ``lines`` to ``handle`` and where each starts to ``starts``."""
    starts.append(line_starts(handle.tell(), lines))
    handle.writelines(lines)


class CollectionWriter:
    """Writes one segment of a collection into ``folder``, streaming: lines, offsets, passage
    rows and ids go to files as they come; only the current batch's document numbers and the
    ids' digests (16 bytes a document, sorted at the end) are kept. ``first_document``: the
    number of the segment's first document in the whole collection."""

    def __init__(self, folder: Path, first_document: int = 0) -> None:
        self.folder, self.first_document = folder, first_document
        folder.mkdir(parents=True, exist_ok=True)
        self._documents = (folder / DOCUMENTS).open("wb")
        self._ids = (folder / DOC_IDS).open("wb")
        self._offsets = fs.NpyAppender(folder / OFFSETS, np.int64)
        self._passages = fs.NpyAppender(folder / PASSAGES, np.int64, (PASSAGE_COLUMNS,))
        self._id_offsets = fs.NpyAppender(folder / DOC_ID_OFFSETS, np.int64)
        self._metadata = MetadataWriter(folder)
        self._digests: list[np.ndarray] = []
        self._batch_numbers: dict[str, int] = {}
        self.num_documents = 0
        self.num_passages = 0

    def add_documents(self, documents: Sequence[Document]) -> None:
        """Append documents; the next ``add_passages`` may name them (and only them)."""
        lines = [(json.dumps(as_record(d), ensure_ascii=False) + "\n").encode() for d in documents]
        _append_lines(self._documents, self._offsets, lines)
        _append_lines(self._ids, self._id_offsets, [f"{d.id}\n".encode() for d in documents])
        self._metadata.add(documents)
        first = self.first_document + self.num_documents
        self._digests.append(sorted_digests((d.id for d in documents), first))
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
        digests = np.concatenate(self._digests) if self._digests else np.zeros(0, DIGEST)
        fs.save_array(self.folder / DIGESTS, np.sort(digests, order=["digest", "number"]))
        self._digests = []
        return self.num_documents, self.num_passages


class DocIds(Sequence[str]):
    """One segment's ids by their number in it: ``doc_ids.txt`` and its line offsets,
    memory-mapped."""

    def __init__(self, segment: Segment) -> None:
        folder, count = segment.folder, segment.num_documents
        self._offsets = segment.load(DOC_ID_OFFSETS)
        size = (folder / DOC_IDS).stat().st_size
        if self._offsets.shape != (count + 1,) or int(self._offsets[-1]) != size:
            raise segment.damaged(
                f"{segment.name(DOC_ID_OFFSETS)} has shape {self._offsets.shape} ending at "
                f"{int(self._offsets[-1]) if len(self._offsets) else 0:,}; expected "
                f"({count + 1},) ending at {size:,} ({segment.name(DOC_IDS)})",
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


class Segment:
    """One segment's files, opened (see the module's text): documents ``first_document`` on
    and passage rows ``first_row`` on of the whole collection."""

    def __init__(self, folder: Path, index: Path, first_document: int, first_row: int) -> None:
        self.folder, self.index = folder, index
        self.first_document, self.first_row = first_document, first_row
        self.offsets = self.load(OFFSETS)
        self.passages = self.load(PASSAGES)
        if self.offsets.ndim != 1 or len(self.offsets) == 0:
            raise self.damaged(f"{self.name(OFFSETS)} has shape {self.offsets.shape}, not (n + 1,)")
        if self.passages.ndim != 2 or self.passages.shape[1] != PASSAGE_COLUMNS:
            shape = self.passages.shape
            raise self.damaged(f"{self.name(PASSAGES)} has shape {shape}, not (n, 4)")
        if not (folder / DOC_IDS).is_file() and not (folder / OLD_DOC_IDS).is_file():
            raise self.damaged(f"{self.name(DOC_IDS)} is missing")
        try:
            self.handle = (folder / DOCUMENTS).open("rb")
        except FileNotFoundError as exc:
            raise self.damaged(f"{self.name(DOCUMENTS)} is missing") from exc
        size = os.fstat(self.handle.fileno()).st_size
        if size != int(self.offsets[-1]):
            self.handle.close()
            raise self.damaged(
                f"{self.name(DOCUMENTS)} has {size:,} bytes, its offsets end at "
                f"{int(self.offsets[-1]):,}"
            )
        self._doc_ids: Sequence[str] | None = None

    @property
    def num_documents(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_passages(self) -> int:
        return len(self.passages)

    def name(self, file: str) -> str:
        """``file`` of this segment as named from the index folder."""
        return (self.folder / file).relative_to(self.index).as_posix()

    def damaged(self, problem: str) -> DamagedIndexError:
        return damaged(self.index, problem)

    def load(self, file: str, mmap: bool = True) -> np.ndarray:
        """``np.load`` one of the segment's arrays; a missing or unreadable one is an error."""
        path = self.folder / file
        if not path.is_file():
            raise self.damaged(f"{self.name(file)} is missing")
        try:
            return np.load(path, mmap_mode="r" if mmap else None)
        except (ValueError, OSError, EOFError) as exc:
            raise self.damaged(f"{self.name(file)} is unreadable ({exc})") from exc

    @property
    def doc_ids(self) -> Sequence[str]:
        """The segment's ids, by their number in it (opened on first use)."""
        if self._doc_ids is None:
            if (self.folder / DOC_IDS).is_file():
                self._doc_ids = DocIds(self)
            else:
                self._doc_ids = self._old_doc_ids()
        return self._doc_ids

    def _old_doc_ids(self) -> list[str]:
        """The ids of a format-1 index: one JSON list."""
        path = self.folder / OLD_DOC_IDS
        try:
            ids = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise self.damaged(f"{OLD_DOC_IDS} is unreadable ({exc})") from exc
        if not isinstance(ids, list) or len(ids) != self.num_documents:
            count = len(ids) if isinstance(ids, list) else "no"
            raise self.damaged(
                f"{OLD_DOC_IDS} lists {count} ids for {self.num_documents:,} documents"
            )
        return ids

    def digests(self) -> np.ndarray:
        """The sorted digests of the segment's ids (computed here for an index written before
        odqa kept them)."""
        if (self.folder / DIGESTS).is_file():
            return self.load(DIGESTS)
        return sorted_digests(self.doc_ids, self.first_document)

    def document(self, number: int) -> Document:
        """The segment's document ``number`` (counted in the segment)."""
        start, end = int(self.offsets[number]), int(self.offsets[number + 1])
        self.handle.seek(start)
        line = self.handle.read(end - start)
        try:
            record = json.loads(line)
            return Document(**record)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
            where = f"{self.name(DOCUMENTS)}:{number + 1} (bytes {start:,}-{end:,})"
            raise self.damaged(f"{where} is not the document stored there") from exc

    def close(self) -> None:
        self.handle.close()


class SegmentedIds(Sequence[str]):
    """The ids of every segment, by document number in the whole collection."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self.parts = [segment.doc_ids for segment in collection.segments]

    def __len__(self) -> int:
        return self.collection.num_documents

    def __getitem__(self, number: int) -> str:  # type: ignore[override]
        if not 0 <= number < len(self):
            raise IndexError(number)
        part = self.collection.segment_of_document(number)
        return self.parts[part][number - self.collection.segments[part].first_document]

    def __iter__(self) -> Iterator[str]:
        for part in self.parts:
            yield from part


class Collection:
    """Random access to the documents and passages of an index, across its segments.

    ``identity``: the directory's (:func:`odqa.fs.directory_identity`) when the caller read
    something of it before (its manifest); by default, taken now."""

    def __init__(self, folder: Path, identity: tuple[int, int] | None = None) -> None:
        self.folder = folder
        self.segments: list[Segment] = []
        self._directory: int | None = None
        documents = rows = 0
        try:
            # held open while the collection is: the directory's inode cannot be reused by
            # another put at this path, so its identity tells them apart for good
            try:
                self._directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise damaged(folder, "the index folder is not there") from exc
            held = os.fstat(self._directory)
            self.identity = (held.st_dev, held.st_ino)
            if identity is not None and identity != self.identity:
                raise IndexReplacedError(f"{folder} was replaced while it was being opened")
            for segment_folder in segment_folders(folder):
                segment = Segment(segment_folder, folder, documents, rows)
                self.segments.append(segment)
                documents += segment.num_documents
                rows += segment.num_passages
            self._document_starts = np.asarray(
                [s.first_document for s in self.segments] + [documents], np.int64
            )
            self._row_starts = np.asarray([s.first_row for s in self.segments] + [rows], np.int64)
            self.deleted = self._load_deleted(rows)
            self.check_unchanged()
        except BaseException:
            self.close()
            raise
        self._doc_ids: Sequence[str] | None = None
        self._metadata: JoinedColumns | None = None
        self._owners: np.ndarray | None = None
        self._live: np.ndarray | None = None
        self.num_deleted = int(self.deleted.sum())

    def _load_deleted(self, rows: int) -> np.ndarray:
        """The deleted flags, one a row; rows added since the last deletion have none in the
        file (an addition does not rewrite it) and are not deleted."""
        if not (self.folder / DELETED).exists():
            return np.zeros(rows, bool)
        deleted = self.segments[0].load(DELETED, mmap=False)
        if deleted.ndim != 1 or len(deleted) > rows:
            raise damaged(
                self.folder,
                f"{DELETED} marks {len(deleted):,} passages, the segments hold {rows:,}",
            )
        if len(deleted) < rows:
            deleted = np.concatenate([deleted, np.zeros(rows - len(deleted), bool)])
        return deleted

    def check_unchanged(self) -> None:
        """Refuse to go on when the directory at the collection's path is no longer the one
        it opened: call it after opening more of the index, so nothing of two is mixed."""
        if fs.directory_identity(self.folder) != self.identity:
            raise IndexReplacedError(
                f"{self.folder} was replaced since it was opened (rebuilt, or updated by "
                "another writer); open it again to read the new index"
            )

    @property
    def live(self) -> np.ndarray:
        """Per passage row: not deleted (made once, on first use)."""
        if self._live is None:
            self._live = ~self.deleted
        return self._live

    @property
    def num_documents(self) -> int:
        return int(self._document_starts[-1])

    @property
    def num_passages(self) -> int:
        return int(self._row_starts[-1])

    def segment_of_document(self, number: int) -> int:
        return int(np.searchsorted(self._document_starts, number, side="right")) - 1

    def segment_of_row(self, row: int) -> int:
        return int(np.searchsorted(self._row_starts, row, side="right")) - 1

    @property
    def doc_ids(self) -> Sequence[str]:
        """Document ids in storage order (opened on first use)."""
        if self._doc_ids is None:
            doc_ids = SegmentedIds(self) if len(self.segments) > 1 else self.segments[0].doc_ids
            self.check_unchanged()
            self._doc_ids = doc_ids
        return self._doc_ids

    @property
    def metadata(self) -> JoinedColumns:
        """The documents' metadata columns, for filters (opened on first use)."""
        if self._metadata is None:
            parts = [MetadataColumns(s.folder, s.num_documents) for s in self.segments]
            self.check_unchanged()
            self._metadata = JoinedColumns(parts)
        return self._metadata

    @property
    def owners(self) -> np.ndarray:
        """Each passage row's document number (read once, on first use)."""
        if self._owners is None:
            parts = [np.asarray(segment.passages[:, 0]) for segment in self.segments]
            self._owners = np.ascontiguousarray(np.concatenate(parts))
        return self._owners

    def rows(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The passage table's ``rows``: ``(len(rows), 4)`` (document, chunk, start, end)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(self.segments) == 1:
            return np.asarray(self.segments[0].passages[rows]).reshape(-1, PASSAGE_COLUMNS)
        out = np.empty((len(rows), PASSAGE_COLUMNS), np.int64)
        parts = np.searchsorted(self._row_starts, rows, side="right") - 1
        for part in np.unique(parts):
            chosen = parts == part
            segment = self.segments[part]
            out[chosen] = segment.passages[rows[chosen] - segment.first_row]
        return out

    def live_rows(self, number: int) -> np.ndarray:
        """The rows of document ``number`` that are not deleted (its passages are
        consecutive rows of its segment)."""
        segment = self.segments[self.segment_of_document(number)]
        owners = segment.passages[:, 0]
        first = int(np.searchsorted(owners, number, side="left"))
        last = int(np.searchsorted(owners, number, side="right"))
        rows = np.arange(first, last, dtype=np.int64) + segment.first_row
        return rows[~self.deleted[rows]]

    def numbers_of(self, doc_ids: Iterable[str]) -> dict[str, int]:
        """The number of each of ``doc_ids`` that is a live document (others are left out),
        found through each segment's sorted digests: no id is read but the candidates'."""
        wanted = list(dict.fromkeys(doc_ids))
        digests = np.fromiter((id_digest(doc_id) for doc_id in wanted), np.int64, len(wanted))
        found: dict[str, int] = {}
        for segment in self.segments:
            table = segment.digests()
            first = np.searchsorted(table["digest"], digests, side="left")
            last = np.searchsorted(table["digest"], digests, side="right")
            for position in np.flatnonzero(last > first):
                for number in table["number"][first[position] : last[position]].tolist():
                    doc_id = wanted[position]
                    local = number - segment.first_document
                    if segment.doc_ids[local] == doc_id and len(self.live_rows(number)):
                        found[doc_id] = number
        return found

    def documents(self, batch: int = 4096) -> Iterator[list[Document]]:
        """Every stored document, in order, a batch at a time."""
        for first in range(0, self.num_documents, batch):
            last = min(first + batch, self.num_documents)
            yield [self.document(number) for number in range(first, last)]

    def document(self, number: int) -> Document:
        """The document stored as number ``number`` (0-based)."""
        segment = self.segments[self.segment_of_document(number)]
        return segment.document(number - segment.first_document)

    def passage(self, row: int) -> Passage:
        """The passage in row ``row``, its text cut from its document."""
        doc_number, chunk, start, end = (int(value) for value in self.rows([row])[0])
        document = self.document(doc_number)
        return Passage(document.id, chunk, document.text[start:end], document.title, start, end)

    def live_documents(self) -> np.ndarray:
        """Per document number: whether any of its passages is not deleted."""
        owners = self.owners[~self.deleted]
        return np.bincount(owners, minlength=self.num_documents) > 0

    def close(self) -> None:
        for segment in self.segments:
            segment.close()
        if self._directory is not None:
            os.close(self._directory)
            self._directory = None


class CollectionUpdate:
    """Changes to the collection of an update's copy of an index: what it changes is written
    as new files (a new segment; ``deleted.npy`` anew), never into the copy's files, which
    are hard links to the index's own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @staticmethod
    def keep_digests(collection: Collection) -> None:
        """Write the sorted id digests of a segment written before odqa kept them, once, so
        that later updates find ids without reading them all."""
        for segment in collection.segments:
            if not (segment.folder / DIGESTS).is_file():
                fs.save_array(segment.folder / DIGESTS, segment.digests())

    def append(self, documents: Sequence[Document], passages: Sequence[Passage]) -> int:
        """Append ``documents`` and their ``passages`` as a new segment; returns the row of
        the first new passage."""
        collection = Collection(self.folder)
        try:
            self.keep_digests(collection)
            first_document, first_row = collection.num_documents, collection.num_passages
            count = len(collection.segments)
        finally:
            collection.close()
        writer = CollectionWriter(self.folder / SEGMENTS / f"{count:05d}", first_document)
        writer.add_documents(documents)
        writer.add_passages(passages)
        writer.close()
        return first_row

    def delete(self, doc_ids: Iterable[str]) -> tuple[dict[str, int], np.ndarray]:
        """Mark the passages of the live documents among ``doc_ids`` deleted; returns their
        numbers by id (ids not live in the index are left out) and the passage rows."""
        collection = Collection(self.folder)
        try:
            self.keep_digests(collection)
            numbers = collection.numbers_of(doc_ids)
            parts = [collection.live_rows(number) for number in numbers.values()]
            rows = np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
            deleted = np.array(collection.deleted)
        finally:
            collection.close()
        deleted[rows] = True
        fs.save_array(self.folder / DELETED, deleted)
        return numbers, rows
