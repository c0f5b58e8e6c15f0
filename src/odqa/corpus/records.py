"""Typed records that flow through odqa: documents, passages, queries and relevance judgements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Qrels = dict[str, dict[str, int]]
"""Relevance judgements: query id -> document id -> graded relevance (0 = not relevant)."""


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
