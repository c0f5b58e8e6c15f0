"""``Hit``: one retrieved passage, the plain value every retriever returns."""

from __future__ import annotations

from dataclasses import dataclass

from odqa.corpus.records import Passage


@dataclass(frozen=True, slots=True)
class Hit:
    """A passage of document ``doc_id`` at ``rank`` (1-based) with its retriever's score.

    ``row`` is the passage's row in the index; ``passage`` (text, title, character offsets)
    is filled in when the caller asks for text.
    """

    doc_id: str
    chunk: int
    row: int
    score: float
    rank: int
    passage: Passage | None = None

    @property
    def passage_id(self) -> str:
        return f"{self.doc_id}#{self.chunk}"
