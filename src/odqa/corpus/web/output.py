"""The run's two outputs: the corpus JSONL (appended, resumable) and the per-URL report."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Literal

from odqa.corpus.jsonl import read_objects
from odqa.corpus.records import Document
from odqa.corpus.textio import GZIP_MAGIC
from odqa.errors import InputError

Status = Literal["ok", "cached", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class UrlResult:
    """One line of the report: what became of the URL (or non-URL) on ``line`` of the list."""

    url: str
    line: int
    status: Status
    reason: str = ""
    attempts: int = 0


def report_path(out: Path) -> Path:
    """``corpus.jsonl.report.jsonl`` beside ``corpus.jsonl``."""
    return out.with_name(f"{out.name}.report.jsonl")


def _tail(out: Path) -> tuple[int, int, int]:
    """Where the last line starts, its 1-based number, and the file size, in one pass."""
    start = newlines = size = 0
    with open(out, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            count = block.count(b"\n")
            if count:
                newlines += count
                start = size + block.rfind(b"\n") + 1
            size += len(block)
    return start, newlines + 1, size


def _starts_with(path: Path, prefix: bytes) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(prefix)) == prefix
    except FileNotFoundError:
        return False


def done_ids(out: Path) -> set[str]:
    """The ids already in ``out``; empty if there is no such file.

    A last line without its newline was being written when a run stopped: complete, it gets
    its newline; cut short, it is dropped (its URL is fetched again). Anything else malformed
    raises InputError, and then the file is left as it was.
    """
    if out.is_dir():
        raise InputError("is a folder, expected a file", path=out)
    if out.suffix == ".gz" or _starts_with(out, GZIP_MAGIC):
        raise InputError("cannot append to a gzipped file; give a .jsonl path", path=out)
    if not out.exists():
        return set()
    try:
        start, last_line, size = _tail(out)
        ids: set[str] = set()
        try:
            ids.update(str(record.get("id", "")) for _, record in read_objects(out))
        except InputError as error:
            if start == size or error.line != last_line:
                raise
            os.truncate(out, start)
            return ids
        if start < size:
            with open(out, "ab") as handle:
                handle.write(b"\n")
        return ids
    except OSError as error:
        raise InputError(f"cannot update the file: {error.strerror or error}", path=out) from None


class CorpusWriter:
    """Appends documents to the corpus JSONL, one flushed line each."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle

    def write(self, document: Document) -> None:
        record = {
            "id": document.id,
            "title": document.title,
            "text": document.text,
            "metadata": document.metadata,
        }
        self.handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.handle.flush()


class ReportWriter:
    """Writes the report JSONL, one flushed line per URL."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle

    def write(self, result: UrlResult) -> None:
        self.handle.write(json.dumps(asdict(result), ensure_ascii=False) + "\n")
        self.handle.flush()
