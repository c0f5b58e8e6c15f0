"""``tune``: a dev set, an index and a trial budget in; the best settings out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odqa.corpus.records import Qrels, Query
from odqa.errors import InputError, OdqaError
from odqa.evaluate.retrieval import judged_queries
from odqa.read.answer import Reader
from odqa.retrieve.options import SearchOptions
from odqa.retrieve.searcher import Searcher
from odqa.tune.scoring import AnswerScore, Replayer, RetrievalScore
from odqa.tune.settings_file import TunedSettings
from odqa.tune.space import READER_KS, Space
from odqa.tune.study import StudyResult, run_study

OBJECTIVES = ("ndcg@10", "em", "f1")


@dataclass(frozen=True)
class DevSet:
    """Retrieval (``queries`` with ``qrels``) or answering (``questions`` with answers);
    ``source`` names the file for messages and the settings' record."""

    queries: Sequence[Query]
    qrels: Qrels | None = None
    source: str = "the dev set"

    @property
    def answering(self) -> bool:
        return self.qrels is None


def dev_queries(dev: DevSet, judged_by: str = "qrels") -> list[Query]:
    """The dev queries that can be scored: judged ones, or questions with gold answers."""
    if not dev.answering:
        return judged_queries(dev.queries, dev.qrels, dev.source, judged_by)
    scored = [query for query in dev.queries if query.answers]
    if not scored:
        raise InputError(
            f"none of its {len(dev.queries)} questions has gold answers",
            path=dev.source,
            field="answers",
        )
    return scored


def judgements_of(queries: Sequence[Query], qrels: Qrels) -> Qrels:
    """The judgements of ``queries`` only: a judged query left out of them (another split,
    beyond ``--limit``) would count as a miss in every average."""
    return {query.id: qrels[query.id] for query in queries if query.id in qrels}


def tune(
    index_dir: str | Path,
    dev: DevSet,
    *,
    trials: int = 50,
    seed: int = 0,
    reader: Reader | None = None,
    reader_ks: Sequence[int] = READER_KS,
    objective: str | None = None,
    options: SearchOptions | None = None,
    show_progress: bool = False,
) -> tuple[TunedSettings, StudyResult]:
    """Tune ``index_dir``'s search settings on ``dev`` (with ``reader`` when answering)."""
    objective = objective or ("f1" if dev.answering else "ndcg@10")
    if objective not in OBJECTIVES:
        raise OdqaError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if dev.answering != (objective != "ndcg@10"):
        raise OdqaError(f"objective {objective} needs {'qrels' if dev.answering else 'questions'}")
    if dev.answering and reader is None:
        raise OdqaError("tuning on questions needs a reader (--reader-model)")
    if dev.answering and (not reader_ks or min(reader_ks) < 1):
        raise OdqaError(f"reader k values must be positive integers, got {list(reader_ks)}")
    scored = dev_queries(dev)
    options = options or SearchOptions()
    with Searcher(index_dir, options) as searcher:
        replayer = Replayer(searcher)
        try:
            space = Space(
                replayer.retrievers,
                tune_plaid=not options.exhaustive,
                reader_ks=reader_ks if dev.answering else None,
            )
            if dev.answering:
                score = AnswerScore(
                    replayer, scored, reader, depth=max(reader_ks), objective=objective
                )
            else:
                score = RetrievalScore(replayer, scored, judgements_of(scored, dev.qrels))
            result = run_study(space, score, trials=trials, seed=seed, show_progress=show_progress)
        finally:
            replayer.close()
    record: dict[str, Any] = {
        "index": str(Path(index_dir).resolve()),
        "dev": dev.source,
        "dev_queries": len(scored),
        "objective": objective,
        "value": result.best_value,
        "default_value": result.default_value,
        "trials": trials,
        "seed": seed,
        "sampler": "TPE",
        "params": result.best_params,
    }
    settings = TunedSettings(
        search=result.best.search_settings(space.retrievers),
        reader_k=result.best.reader_k,
        dev_query_ids=tuple(query.id for query in scored),
        tuning=record,
    )
    return settings, result
