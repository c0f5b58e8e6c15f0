"""``Pipeline``: retrieve passages for a question, then read an answer out of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tqdm.auto import tqdm

from odqa.errors import OdqaError
from odqa.read.answer import Answer, Evidence, Reader
from odqa.retrieve.hit import Hit
from odqa.retrieve.searcher import Searcher

SEARCH_BATCH = 256


def evidence_from_hit(hit: Hit) -> Evidence:
    """The passage of a hit (which must carry its text) as reader input."""
    if hit.passage is None:
        raise OdqaError(f"hit {hit.passage_id} carries no text; search with with_text=True")
    return Evidence(
        hit.doc_id, hit.passage_id, hit.passage.text, hit.passage.title, retrieval_score=hit.score
    )


class Pipeline:
    """Open-domain QA: the top ``k`` passages of ``searcher`` (one per document, best first)
    read by ``reader``. ``retriever`` picks the index's retriever (default: its default);
    ``where`` keeps only documents whose metadata match (see :meth:`Searcher.search`).

    Any object with ``read(question, passages) -> Answer`` is a reader (see
    :class:`~odqa.read.answer.Reader`); :func:`~odqa.read.factory.make_reader` builds odqa's.
    """

    def __init__(
        self,
        searcher: Searcher,
        reader: Reader,
        *,
        retriever: str | None = None,
        where: Mapping[str, object] | None = None,
    ) -> None:
        self.searcher = searcher
        self.reader = reader
        self.retriever = retriever
        self.where = where

    def retrieve(self, questions: Sequence[str], k: int) -> list[list[Evidence]]:
        """The top ``k`` passages of each question, as evidence."""
        results = self.searcher.search(questions, k, retriever=self.retriever, where=self.where)
        return [[evidence_from_hit(hit) for hit in hits] for hits in results]

    def ask(self, question: str, *, k: int = 3) -> Answer:
        """The answer to one question from its top ``k`` passages."""
        if not question.strip():
            raise OdqaError("empty question")
        return self.reader.read(question, self.retrieve([question], k)[0])

    def ask_many(
        self, questions: Sequence[str], *, k: int = 3, show_progress: bool = False
    ) -> list[Answer]:
        """Answers to ``questions``, in order; retrieval runs in batches."""
        blank = next((i for i, question in enumerate(questions) if not question.strip()), None)
        if blank is not None:
            raise OdqaError(f"question {blank + 1} is empty")
        answers = []
        progress = tqdm(
            total=len(questions), desc="answering", unit="question", disable=not show_progress
        )
        for first in range(0, len(questions), SEARCH_BATCH):
            batch = questions[first : first + SEARCH_BATCH]
            for question, evidence in zip(batch, self.retrieve(batch, k), strict=True):
                answers.append(self.reader.read(question, evidence))
                progress.update()
        progress.close()
        return answers
