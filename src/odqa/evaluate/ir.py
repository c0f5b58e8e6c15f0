"""Retrieval metrics through pytrec_eval (trec_eval); odqa computes none of them by hand.

Conventions, chosen to match BEIR and ``trec_eval -c``:

* A query is *judged* when its qrels hold at least one document with relevance > 0; queries
  whose judgements are all 0 are treated as unjudged.
* Judged queries that the run lacks (or holds with no document) score 0 on every metric and
  are included in the averages (``queries_without_run``).
* Run queries that are not judged are left out (``run_queries_without_qrels``).
* Documents are ranked by score, highest first, ties by document id ascending (the rule of
  :func:`odqa.evaluate.runs.ranked`); trec_eval's own tie-break (id descending) never applies,
  because scores are replaced by rank-derived ones before they reach it. So the figures do not
  depend on the order in which documents were put in the dicts.
* ``mrr@10`` is trec_eval's ``recip_rank`` on the run cut to its top 10 documents per query.
* ``accuracy@k`` is trec_eval's ``success.k``: the share of queries with a relevant document
  (relevance > 0) in the top k.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice

import pytrec_eval

from odqa.corpus.records import Qrels, grade_problem
from odqa.errors import InputError, OdqaError
from odqa.evaluate.runs import Run, ranked

_MEASURES = {"ndcg@10": "ndcg_cut_10", "recall@10": "recall_10", "recall@100": "recall_100"}
_MRR_DEPTH = 10
_EXAMPLES = 3
CURVE_KS = (1, 3, 5, 10, 20, 50, 100)
"""The k values of :func:`metrics_by_k` unless told."""


def evaluate_run(
    run: Run, qrels: Qrels, *, accuracy_at: Sequence[int] = ()
) -> dict[str, float | int]:
    """Mean nDCG@10, recall@10/100, MRR@10 and accuracy@k of ``run``, with query counts.

    Keys, in order: ``ndcg@10``, ``recall@10``, ``recall@100``, ``mrr@10``, ``accuracy@k`` for
    each k of ``accuracy_at``, then ``queries`` (judged queries the run answers),
    ``queries_without_run`` and ``run_queries_without_qrels`` (see the module notes).
    Raises :class:`InputError` when the run and the qrels share no query id.
    """
    cutoffs = _cutoffs(accuracy_at)
    judged, ranked_run = _prepared(run, qrels)
    per_query = _trec_eval(ranked_run, judged, cutoffs)
    metrics: dict[str, float | int] = {
        name: _mean(per_query, measure, len(judged)) for name, measure in _MEASURES.items()
    }
    metrics["mrr@10"] = _mean(_mrr(ranked_run, judged), "recip_rank", len(judged))
    for k in cutoffs:
        metrics[f"accuracy@{k}"] = _mean(per_query, f"success_{k}", len(judged))
    metrics["queries"] = len(ranked_run)
    metrics["queries_without_run"] = len(judged) - len(ranked_run)
    metrics["run_queries_without_qrels"] = sum(1 for qid in run if qid not in judged)
    return metrics


def metrics_by_k(
    run: Run, qrels: Qrels, ks: Sequence[int] = CURVE_KS
) -> dict[str, dict[int, float]]:
    """Mean ``nDCG@k`` and ``recall@k`` of ``run`` for each k of ``ks`` (the conventions of
    :func:`evaluate_run`): ``{"nDCG": {k: value}, "recall": {k: value}}``."""
    cutoffs = _cutoffs(ks)
    judged, ranked_run = _prepared(run, qrels)
    listed = ",".join(map(str, cutoffs))
    measures = {f"ndcg_cut.{listed}", f"recall.{listed}"}
    per_query = pytrec_eval.RelevanceEvaluator(judged, measures).evaluate(ranked_run)
    return {
        name: {k: _mean(per_query, f"{measure}_{k}", len(judged)) for k in cutoffs}
        for name, measure in (("nDCG", "ndcg_cut"), ("recall", "recall"))
    }


def _prepared(run: Run, qrels: Qrels) -> tuple[Qrels, Run]:
    """The judged qrels, and the run on them with rank-derived scores."""
    _check_grades(qrels)
    _check_overlap(run, qrels)
    judged = {qid: docs for qid, docs in qrels.items() if any(rel > 0 for rel in docs.values())}
    if not judged:
        raise InputError("the qrels hold no relevant document (relevance > 0) for any query")
    return judged, {qid: _rank_scores(run[qid]) for qid in judged if run.get(qid)}


def _cutoffs(accuracy_at: Sequence[int]) -> list[int]:
    """The accuracy cutoffs, deduplicated in order; each must be a positive integer."""
    cutoffs = list(dict.fromkeys(accuracy_at))
    for k in cutoffs:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise OdqaError(f"accuracy cutoffs must be positive integers, got {k!r}")
    return cutoffs


def _check_grades(qrels: Qrels) -> None:
    """Refuse a grade trec_eval cannot hold (it would score wrongly, or crash)."""
    for qid, judged in qrels.items():
        for doc_id, grade in judged.items():
            problem = grade_problem(grade)
            if problem is not None:
                raise InputError(f"qrels[{qid!r}][{doc_id!r}]: {problem}")


def _check_overlap(run: Run, qrels: Qrels) -> None:
    """Refuse a run that answers none of the judged queries: most likely the wrong qrels."""
    if run.keys() & qrels.keys():
        return
    raise InputError(
        "no query id of the run appears in the qrels "
        f"(run ids like {_examples(run)}, qrels ids like {_examples(qrels)})"
    )


def _examples(ids: dict) -> str:
    """A few ids of a mapping, for an error message."""
    shown = ", ".join(repr(qid) for qid in islice(sorted(ids), _EXAMPLES))
    return shown or "none"


def _rank_scores(scores: dict[str, float]) -> dict[str, float]:
    """Replace scores by ``n - rank`` so that trec_eval sees exactly odqa's ranking."""
    order = ranked(scores)
    return {doc_id: float(len(order) - rank) for rank, (doc_id, _) in enumerate(order)}


def _trec_eval(run: Run, qrels: Qrels, cutoffs: list[int]) -> dict[str, dict[str, float]]:
    """Per-query nDCG@10, recall@10/100 and success@k from pytrec_eval."""
    measures = {"ndcg_cut.10", "recall.10,100"}
    if cutoffs:
        measures.add("success." + ",".join(map(str, cutoffs)))
    return pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)


def _mrr(run: Run, qrels: Qrels) -> dict[str, dict[str, float]]:
    """Per-query reciprocal rank on the run cut to its top ``_MRR_DEPTH`` documents."""
    top = {qid: dict(islice(ranked(scores), _MRR_DEPTH)) for qid, scores in run.items()}
    return pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top)


def _mean(per_query: dict[str, dict[str, float]], measure: str, queries: int) -> float:
    """Average of ``measure`` over ``queries`` queries; those missing from ``per_query`` add 0."""
    return sum(values[measure] for values in per_query.values()) / queries
