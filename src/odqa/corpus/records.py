"""Typed records that flow through odqa: documents, passages, queries and relevance judgements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Qrels = dict[str, dict[str, int]]
"""Relevance judgements: query id -> document id -> graded relevance (0 = not relevant)."""

MAX_DOCUMENT_BYTES = 64 * 2**20
"""The largest document odqa reads, 64 MiB: a JSONL line, a file of a text folder, a table
row's text. One document is held whole while it is cut into passages (about 10 times its
size at the peak); a larger one is refused with its line, file or row rather than run the
machine out of memory. Split such a document into several."""

GRADES = (-(2**31 - 1), 2**16 - 1)
"""The relevance grades odqa takes, lowest and highest: trec_eval holds a grade in a C int
(larger ones wrap, and give wrong figures or crash it) and keeps a table row per grade
level up to the highest (65,535 costs it half a megabyte a query, a billion 8 GB)."""


def grade_problem(value: object) -> str | None:
    """Why ``value`` cannot be a relevance grade (see :data:`GRADES`), or None."""
    low, high = GRADES
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return f"relevance grades are integers from {low} to {high}, got {value!r}"
    return None


@dataclass(frozen=True, slots=True)
class Document:
    """One item of a collection, as the user gave it."""

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Passage:
    """A token window of a document; ``text == document.text[start:end]``."""

    doc_id: str
    chunk: int
    text: str
    title: str
    start: int
    end: int

    @property
    def id(self) -> str:
        """Stable passage id: the document id and the chunk number."""
        return f"{self.doc_id}#{self.chunk}"


@dataclass(frozen=True, slots=True)
class Query:
    """A question, with gold answers where the source has them."""

    id: str
    text: str
    answers: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
