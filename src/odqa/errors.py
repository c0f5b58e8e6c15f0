"""Exceptions with messages a user can act on.

Every error raised by odqa derives from :class:`OdqaError`. Errors about user input name the
file, the line (1-based) and the field, so that the user can go straight to the problem.
"""

from __future__ import annotations

from pathlib import Path


class OdqaError(Exception):
    """Base class of every error odqa raises on purpose."""


def printable(text: str) -> str:
    """``text`` with what a one-line message cannot show (line breaks, other control
    characters, lone surrogates) written as escapes: ``a\\nb``."""
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


class InputError(OdqaError):
    """Bad user input: a malformed file, a missing field, a duplicate id, an empty corpus.

    ``line`` locates it in a text file, ``row`` in a table (parquet, a datasets folder)."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        row: int | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.row = row
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
            where = where if self.row is None else f"{where}: row {self.row}"
        if self.field is not None:
            field = printable(self.field)
            where = f"{where}: field '{field}'" if where else f"field '{field}'"
        return f"{where}: {self.message}" if where else self.message


class DuplicateIdError(InputError):
    """A document id already live in the index (or given twice in one addition)."""


class IndexFormatError(OdqaError):
    """An index directory that is missing, damaged, or written by a newer odqa."""


class ModelMismatchError(OdqaError):
    """The model given at search time is not the model the index was built with."""


class IndexReplacedError(IndexFormatError):
    """The index directory was replaced (rebuilt or updated by another writer) after it was
    opened: reading more of it would mix two indexes. Open it again."""
