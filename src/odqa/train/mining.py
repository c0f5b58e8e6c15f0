"""Hard negatives: documents a retriever ranks high for a query that are not judged relevant.

Each judged query is searched once; its candidates are the documents at ranks ``ranks[0]`` to
``ranks[1]`` (1-based, inclusive, one hit per document, ranked as everywhere in odqa: score
descending, ties by id), less every document judged relevant for it. ``per_query`` of them are
drawn by a generator seeded with the seed and the query id, so a query's negatives depend on
nothing else, and the same seed gives the same file. Each (query, relevant document) becomes
one example carrying the query's negatives. Texts come from the index's own collection.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from odqa.corpus.records import Qrels, Query
from odqa.errors import OdqaError
from odqa.evaluate.retrieval import run_queries
from odqa.evaluate.runs import ranked
from odqa.fs import atomic_file
from odqa.index.collection import Collection
from odqa.retrieve.searcher import Searcher
from odqa.train.data import document_text


@dataclass(frozen=True, slots=True)
class MinedExample:
    """A query, one of its relevant documents, and the hard negatives mined for the query."""

    query_id: str
    query: str
    positive_id: str
    positive: str
    negative_ids: tuple[str, ...]
    negatives: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MiningStats:
    """What a mining run did.

    ``queries`` mined; ``examples`` and ``negatives`` (over all examples) written;
    ``short_queries`` given fewer than ``per_query`` negatives; ``unjudged_queries`` skipped for
    having no relevant document; ``missing_positives``: relevant documents not in the index
    (empty, deleted or from another corpus), skipped.
    """

    queries: int
    examples: int
    negatives: int
    short_queries: int
    unjudged_queries: int
    missing_positives: int


def mine_negatives(
    searcher: Searcher | str | Path,
    queries: Sequence[Query],
    qrels: Qrels,
    *,
    ranks: tuple[int, int] = (10, 100),
    per_query: int = 4,
    seed: int = 0,
    retriever: str | None = None,
    show_progress: bool = False,
) -> tuple[list[MinedExample], MiningStats]:
    """Hard negatives for every judged query, from a searcher or an index directory."""
    check_settings(ranks, per_query)
    first, last = ranks
    if not isinstance(searcher, Searcher):
        searcher = Searcher(searcher)
    judged = [query for query in queries if _relevant(qrels, query.id)]
    run = run_queries(searcher, judged, retriever=retriever, k=last, show_progress=show_progress)
    texts = _Texts(searcher.collection)
    examples: list[MinedExample] = []
    mined = short = missing = 0
    for query in judged:
        relevant = _relevant(qrels, query.id)
        positives = [doc_id for doc_id in relevant if doc_id in texts]
        missing += len(relevant) - len(positives)
        if not positives:
            continue
        window = [doc_id for doc_id, _ in ranked(run[query.id])[first - 1 : last]]
        candidates = [doc_id for doc_id in window if doc_id not in relevant]
        picked = random.Random(f"{seed}:{query.id}").sample(
            range(len(candidates)), min(per_query, len(candidates))
        )
        negative_ids = tuple(candidates[index] for index in sorted(picked))
        negatives = tuple(texts[doc_id] for doc_id in negative_ids)
        mined += 1
        short += len(negative_ids) < per_query
        examples += [
            MinedExample(query.id, query.text, doc_id, texts[doc_id], negative_ids, negatives)
            for doc_id in positives
        ]
    stats = MiningStats(
        queries=mined,
        examples=len(examples),
        negatives=sum(len(example.negative_ids) for example in examples),
        short_queries=short,
        unjudged_queries=len(queries) - len(judged),
        missing_positives=missing,
    )
    return examples, stats


def check_settings(ranks: tuple[int, int], per_query: int) -> None:
    """An OdqaError unless ``1 <= ranks[0] <= ranks[1]`` and ``per_query >= 1``."""
    first, last = ranks
    if not 1 <= first <= last:
        raise OdqaError(f"ranks must satisfy 1 <= first <= last, got {first}-{last}")
    if per_query < 1:
        raise OdqaError(f"per_query must be at least 1, got {per_query}")


def _relevant(qrels: Qrels, query_id: str) -> list[str]:
    """The documents judged relevant (grade > 0) for a query, in qrels order."""
    return [doc_id for doc_id, grade in qrels.get(query_id, {}).items() if grade > 0]


class _Texts:
    """Document texts by id (title, a space, text), read from an index's collection."""

    def __init__(self, collection: Collection) -> None:
        self._collection = collection
        self._numbers = {doc_id: number for number, doc_id in enumerate(collection.doc_ids)}

    def __contains__(self, doc_id: str) -> bool:
        return doc_id in self._numbers

    def __getitem__(self, doc_id: str) -> str:
        return document_text(self._collection.document(self._numbers[doc_id]))


def write_mined(path: str | Path, examples: Iterable[MinedExample]) -> Path:
    """Write examples as JSONL lines (``query_id``, ``query``, ``positive_id``, ``positive``,
    ``negative_ids``, ``negatives``), atomically: a temporary sibling renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as partial, partial.open("x", encoding="utf-8") as out:
        for example in examples:
            out.write(json.dumps(asdict(example), ensure_ascii=False) + "\n")
    return path
