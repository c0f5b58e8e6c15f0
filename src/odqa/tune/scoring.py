"""Scoring a candidate on a dev set, with every retriever's lists searched once and replayed.

Each trial fuses the remembered lists of the retrievers it picks exactly as a search with
those settings would (the same :class:`~odqa.retrieve.hybrid.HybridRetriever`, the same
document depth), so the dev score of the best trial is what ``odqa eval --settings`` gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from odqa.corpus.records import Qrels, Query
from odqa.evaluate import evaluate_run
from odqa.evaluate.qa import qa_metrics
from odqa.evaluate.retrieval import RUN_DEPTH
from odqa.index.settings import PlaidSettings
from odqa.qa.pipeline import evidence_from_hit
from odqa.read.answer import Reader
from odqa.retrieve.base import Retriever
from odqa.retrieve.hit import Hit
from odqa.retrieve.hybrid import HybridRetriever
from odqa.retrieve.searcher import Searcher
from odqa.tune.replay import Remembered
from odqa.tune.space import PLAID_KIND, Candidate


class Replayer:
    """The index's retrievers, remembered; ColBERT once per PLAID setting tried."""

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher
        self._parts: dict[tuple[str, PlaidSettings | None], Remembered] = {}
        self._plaid_searchers: dict[PlaidSettings, Searcher] = {}

    @property
    def retrievers(self) -> list[str]:
        return list(self.searcher.manifest.retrievers)

    def part(self, name: str, plaid: PlaidSettings) -> Remembered:
        key = (name, plaid if name == PLAID_KIND else None)
        if key not in self._parts:
            self._parts[key] = Remembered(self._searcher_for(key[1]).retriever(name))
        return self._parts[key]

    def engine(self, candidate: Candidate) -> Retriever:
        """The retriever a search with ``candidate``'s settings would use."""
        parts = [self.part(name, candidate.plaid) for name in candidate.retrievers]
        if len(parts) == 1:
            return parts[0]
        return HybridRetriever(parts, candidate.fusion, candidate.weights)

    def documents(self, candidate: Candidate, texts: Sequence[str], k: int) -> list[list[Hit]]:
        return self.searcher.documents(self.engine(candidate), texts, k)

    def _searcher_for(self, plaid: PlaidSettings | None) -> Searcher:
        if plaid is None or plaid == self.searcher.options.plaid:
            return self.searcher
        if plaid not in self._plaid_searchers:
            options = replace(self.searcher.options, plaid=plaid)
            self._plaid_searchers[plaid] = Searcher(self.searcher.path, options)
        return self._plaid_searchers[plaid]

    def close(self) -> None:
        for searcher in self._plaid_searchers.values():
            searcher.close()


class RetrievalScore:
    """nDCG@10 of a candidate's run (top 100 documents a query, as ``odqa eval``)."""

    objective = "ndcg@10"

    def __init__(self, replayer: Replayer, queries: Sequence[Query], qrels: Qrels) -> None:
        self.replayer = replayer
        self.queries = list(queries)
        self.qrels = qrels

    def __call__(self, candidate: Candidate) -> float:
        texts = [query.text for query in self.queries]
        results = self.replayer.documents(candidate, texts, RUN_DEPTH)
        run = {
            query.id: {hit.doc_id: hit.score for hit in hits}
            for query, hits in zip(self.queries, results, strict=True)
        }
        return float(evaluate_run(run, self.qrels)[self.objective])


class AnswerScore:
    """EM or F1 (percent) of ``reader`` on a candidate's top ``reader_k`` documents; each
    (question, passages) pair is read once however many trials bring it back."""

    def __init__(
        self,
        replayer: Replayer,
        questions: Sequence[Query],
        reader: Reader,
        *,
        depth: int,
        objective: str = "f1",
    ) -> None:
        self.replayer = replayer
        self.questions = list(questions)
        self.reader = reader
        self.depth = depth
        self.objective = objective
        self._read: dict[tuple[str, tuple[int, ...]], str] = {}

    def __call__(self, candidate: Candidate) -> float:
        k = candidate.reader_k or self.depth
        texts = [question.text for question in self.questions]
        results = self.replayer.documents(candidate, texts, self.depth)
        predictions = {}
        for question, hits in zip(self.questions, results, strict=True):
            top = hits[:k]
            key = (question.id, tuple(hit.row for hit in top))
            if key not in self._read:
                evidence = [evidence_from_hit(self.replayer.searcher.attach_text(h)) for h in top]
                self._read[key] = self.reader.read(question.text, evidence).text
            predictions[question.id] = self._read[key]
        return float(qa_metrics(predictions, self.questions)[self.objective])
