"""What a reader returns: an answer and the evidence it rests on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

ANSWER_KINDS = ("span", "sentence", "yesno", "generated", "none")
DEFAULT_K = 3
"""Passages a reader reads per question unless told otherwise (``ask``, ``serve``, the API)."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """A retrieved passage an answer rests on.

    ``start``/``end`` are character offsets of the answer inside ``text`` (extractive readers);
    ``citation`` is the passage's number ``n`` in a generated answer's ``[n]`` citations.
    """

    doc_id: str
    passage_id: str
    text: str
    title: str = ""
    retrieval_score: float = 0.0
    start: int | None = None
    end: int | None = None
    citation: int | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer to one question.

    ``kind`` is ``"span"`` (extracted), ``"sentence"`` (a whole sentence of a passage, from
    the untrained sentence reader), ``"yesno"`` (``text`` is ``"yes"`` or ``"no"``),
    ``"generated"`` (free text citing ``[n]``) or ``"none"`` (nothing cleared the threshold;
    ``text`` is empty). ``evidence`` is best first.
    """

    text: str
    score: float
    kind: str
    evidence: tuple[Evidence, ...] = ()


class Reader(Protocol):
    """Anything that answers a question from passages (extractive, yes/no, generative)."""

    def read(self, question: str, passages: Sequence[Evidence]) -> Answer: ...
