"""JSON Lines: one JSON object per line; blank lines are skipped.

An id given as a JSON number keeps its text as written (``1.50`` is id ``"1.50"``, ``1e400``
is ``"1e400"``), never a rounded float; ``NaN`` and ``Infinity`` (not JSON) are refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from odqa.corpus.records import Document, Query
from odqa.corpus.schema import ID_KEYS, describe, fail, unique_documents, unique_queries
from odqa.corpus.textio import parse_json, read_lines
from odqa.errors import InputError


class _Constant(str):
    """``NaN``, ``Infinity`` or ``-Infinity`` where the JSON text has one, told from a string."""


def read_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line_number, object)`` for each non-blank line of a JSONL file."""
    for number, line in read_lines(path):
        if not line.strip():
            continue
        value = parse_json(line, path, number)
        if not isinstance(value, dict):
            raise InputError(
                f"expected a JSON object, got {describe(value)}", path=path, line=number
            )
        key = next((key for key in ID_KEYS if key in value), None)
        if key is not None and _rounded(value[key]):
            value[key] = _id_as_written(line, key, (path, number))
        yield number, value


def _rounded(value: Any) -> bool:
    """Whether ``value``, parsed from a JSON number, may differ from its text: a float, or the
    integer 0 (written ``-0`` maybe)."""
    return isinstance(value, float) or (type(value) is int and value == 0)


def _id_as_written(line: str, key: str, where: tuple[str | Path, int]) -> str:
    """The text of the JSON number under ``key`` in ``line``, as written."""
    hooks = {"parse_int": str, "parse_float": str, "parse_constant": _Constant}
    raw = parse_json(line, where[0], where[1], **hooks)
    text = raw[key]
    if isinstance(text, _Constant):
        raise fail(f"must be a finite number, got {text}", where, key)
    return text


def read_documents(path: str | Path) -> Iterator[Document]:
    """Stream the documents of a JSONL file."""
    return unique_documents(read_objects(path), path)


def read_queries(path: str | Path) -> list[Query]:
    """The queries of a JSONL file."""
    return unique_queries(read_objects(path), path)
