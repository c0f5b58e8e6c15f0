"""The collection kept inside an index: documents and their passages, read back lazily.

Files: ``documents.jsonl`` (one document per line, as given), ``documents.offsets.npy``
(byte offset of each line, memory-mapped) and ``passages.npy`` (one row per passage:
document number, chunk number, start and end character offsets in the document text).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from odqa.corpus.records import Document, Passage

DOCUMENTS = "documents.jsonl"
OFFSETS = "documents.offsets.npy"
PASSAGES = "passages.npy"
DOC_IDS = "doc_ids.json"
DELETED = "deleted.npy"


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
        self._offsets = np.load(folder / OFFSETS, mmap_mode="r")
        self.passages = np.load(folder / PASSAGES, mmap_mode="r")
        self._handle = (folder / DOCUMENTS).open("rb")
        self._doc_ids: list[str] | None = None
        path = folder / DELETED
        self.deleted = np.load(path) if path.exists() else np.zeros(len(self.passages), bool)
        self.num_deleted = int(self.deleted.sum())

    @property
    def doc_ids(self) -> list[str]:
        """Document ids in storage order (read on first use)."""
        if self._doc_ids is None:
            self._doc_ids = json.loads((self.folder / DOC_IDS).read_text(encoding="utf-8"))
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
        return Document(**json.loads(self._handle.read(end - start)))

    def passage(self, row: int) -> Passage:
        """The passage in row ``row``, its text cut from its document."""
        doc_number, chunk, start, end = (int(value) for value in self.passages[row])
        document = self.document(doc_number)
        return Passage(document.id, chunk, document.text[start:end], document.title, start, end)

    def close(self) -> None:
        self._handle.close()
