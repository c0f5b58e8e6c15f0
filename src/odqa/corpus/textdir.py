"""A folder of ``.txt`` / ``.md`` files, read recursively; each file is one document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from odqa.corpus.records import MAX_DOCUMENT_BYTES, Document
from odqa.corpus.textio import read_text
from odqa.errors import InputError

SUFFIXES = frozenset({".txt", ".md"})


def text_files(folder: Path) -> list[Path]:
    """The ``.txt``/``.md`` files under ``folder``, sorted by relative path.

    Hidden files and anything under a hidden folder (name starting with ``.``) are left out.
    """
    found = (
        path.relative_to(folder)
        for path in folder.rglob("*")
        if path.suffix.lower() in SUFFIXES and path.is_file()
    )
    visible = (path for path in found if not any(part.startswith(".") for part in path.parts))
    return [folder / path for path in sorted(visible, key=Path.as_posix)]


def title_of(text: str, stem: str) -> str:
    """The text of a leading markdown ``# `` heading, else ``stem``."""
    first = text.lstrip().partition("\n")[0].strip()
    return first[2:].strip() if first.startswith("# ") else stem


def document_id(relative: Path) -> str:
    """The relative path with ``/``, whitespace percent-encoded (``my notes.md`` ->
    ``my%20notes.md``): ids hold no whitespace, so every id fits a TREC run file."""
    return "".join(f"%{ord(c):02X}" if c.isspace() or c == "%" else c for c in relative.as_posix())


def read_documents(folder: Path) -> Iterator[Document]:
    """Stream one document per file: id = :func:`document_id` of its relative path, text =
    the contents."""
    if not folder.is_dir():
        raise InputError("is a file, expected a folder of .txt/.md files", path=folder)
    return _documents(folder)


def _documents(folder: Path) -> Iterator[Document]:
    for path in text_files(folder):
        text = read_text(path, MAX_DOCUMENT_BYTES)
        yield Document(document_id(path.relative_to(folder)), text, title_of(text, path.stem))
