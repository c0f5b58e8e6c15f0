"""JSON Lines: one JSON object per line; blank lines are skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from odqa.corpus.records import Document, Query
from odqa.corpus.schema import describe, unique_documents, unique_queries
from odqa.corpus.textio import read_lines
from odqa.errors import InputError


def read_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line_number, object)`` for each non-blank line of a JSONL file."""
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            message = f"malformed JSON at column {error.colno}: {error.msg}"
            raise InputError(message, path=path, line=number) from None
        if not isinstance(value, dict):
            raise InputError(
                f"expected a JSON object, got {describe(value)}", path=path, line=number
            )
        yield number, value


def read_documents(path: str | Path) -> Iterator[Document]:
    """Stream the documents of a JSONL file."""
    return unique_documents(read_objects(path), path)


def read_queries(path: str | Path) -> list[Query]:
    """The queries of a JSONL file."""
    return unique_queries(read_objects(path), path)
