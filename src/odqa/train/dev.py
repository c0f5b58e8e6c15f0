"""Dev-set evaluation during training: exact scoring of a small corpus, odqa's IR metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from odqa.corpus import read_documents, read_qrels, read_queries
from odqa.corpus.records import Qrels, Query
from odqa.errors import InputError
from odqa.evaluate import evaluate_run
from odqa.train.data import document_text
from odqa.train.retrievers import TrainableRetriever

DEV_DEPTH = 100


class DevSet:
    """Queries, judgements and a corpus small enough to score exhaustively.

    Documents are scored whole (title, then text), truncated at the model's length: no
    chunking, so dev figures are for comparing steps of one run, not for reporting.
    """

    def __init__(self, corpus: str | Path, queries: str | Path, qrels: str | Path) -> None:
        self.qrels: Qrels = read_qrels(qrels)
        self.queries: list[Query] = [q for q in read_queries(queries) if q.id in self.qrels]
        if not self.queries:
            raise InputError("no dev query has judgements", path=qrels)
        documents = list(read_documents(corpus))
        self.doc_ids = [document.id for document in documents]
        self.texts = [document_text(document) for document in documents]

    def __call__(self, model: TrainableRetriever) -> dict[str, float]:
        """nDCG@10 and recall@100 of ``model`` on this dev set."""
        scores = model.dev_scores([query.text for query in self.queries], self.texts)
        run: dict[str, dict[str, float]] = {}
        for query, row in zip(self.queries, scores, strict=True):
            top = np.argsort(-row, kind="stable")[:DEV_DEPTH]
            run[query.id] = {self.doc_ids[i]: float(row[i]) for i in top}
        metrics = evaluate_run(run, self.qrels)
        return {"ndcg@10": float(metrics["ndcg@10"]), "recall@100": float(metrics["recall@100"])}
