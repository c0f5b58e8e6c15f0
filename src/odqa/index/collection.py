"""The collection kept inside an index: documents and their passages, read back lazily.

Files: ``documents.jsonl`` (one document per line, as given), ``documents.offsets.npy``
(byte offset of each line, memory-mapped) and ``passages.npy`` (one row per passage:
document number, chunk number, start and end character offsets in the document text).

Opening a collection checks what it can tell of itself at the cost of a few stats and array
headers: every file there, the arrays readable and of the right shapes, the offsets ending
where ``documents.jsonl`` ends. A damaged one is an :class:`IndexFormatError` naming the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from odqa.corpus.records import Document, Passage
from odqa.errors import IndexFormatError

DOCUMENTS = "documents.jsonl"
OFFSETS = "documents.offsets.npy"
PASSAGES = "passages.npy"
DOC_IDS = "doc_ids.json"
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


class CollectionWriter:
    """Appends documents and passages to a collection folder, streaming."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._documents = (folder / DOCUMENTS).open("wb")
        self._offsets: list[int] = []
        self._passages: list[np.ndarray] = []
        self._doc_numbers: dict[str, int] = {}

    def add_documents(self, documents: Sequence[Document]) -> None:
        for document in documents:
            self._doc_numbers[document.id] = len(self._offsets)
            self._offsets.append(self._documents.tell())
            line = json.dumps(asdict(document), ensure_ascii=False) + "\n"
            self._documents.write(line.encode("utf-8"))

    def add_passages(self, passages: Sequence[Passage]) -> None:
        rows = [(self._doc_numbers[p.doc_id], p.chunk, p.start, p.end) for p in passages]
        self._passages.append(np.asarray(rows, dtype=np.int64).reshape(-1, 4))

    def close(self) -> tuple[int, int]:
        """Finish the files; returns (documents, passages)."""
        self._offsets.append(self._documents.tell())
        self._documents.close()
        np.save(self.folder / OFFSETS, np.asarray(self._offsets, dtype=np.int64))
        passages = np.concatenate(self._passages) if self._passages else np.zeros((0, 4), np.int64)
        np.save(self.folder / PASSAGES, passages)
        ids = json.dumps(list(self._doc_numbers), ensure_ascii=False)
        (self.folder / DOC_IDS).write_text(ids, encoding="utf-8")
        return len(self._offsets) - 1, len(passages)


class Collection:
    """Random access to the documents and passages of an index."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._offsets = load_array(folder, OFFSETS)
        self.passages = load_array(folder, PASSAGES)
        path = folder / DELETED
        self.deleted = (
            load_array(folder, DELETED, mmap=False)
            if path.exists()
            else np.zeros(len(self.passages), bool)
        )
        self._check_shapes()
        if not (folder / DOC_IDS).is_file():
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
        self._doc_ids: list[str] | None = None
        self.num_deleted = int(self.deleted.sum())

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
    def doc_ids(self) -> list[str]:
        """Document ids in storage order (read on first use)."""
        if self._doc_ids is None:
            path = self.folder / DOC_IDS
            try:
                ids = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise damaged(self.folder, f"{DOC_IDS} is unreadable ({exc})") from exc
            if not isinstance(ids, list) or len(ids) != self.num_documents:
                count = len(ids) if isinstance(ids, list) else "no"
                raise damaged(
                    self.folder, f"{DOC_IDS} lists {count} ids for {self.num_documents:,} documents"
                )
            self._doc_ids = ids
        return self._doc_ids

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

    def close(self) -> None:
        self._handle.close()
