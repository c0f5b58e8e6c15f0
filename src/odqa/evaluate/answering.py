"""Scoring question answering: the open pipeline at several depths, or a reader alone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from odqa.corpus import squad
from odqa.corpus.records import Query
from odqa.errors import InputError, OdqaError
from odqa.evaluate.qa import answer_in_text, qa_metrics
from odqa.qa.pipeline import SEARCH_BATCH, Pipeline
from odqa.read.answer import Evidence, Reader
from odqa.retrieve.searcher import Searcher


def evaluate_qa(
    searcher: Searcher,
    reader: Reader,
    questions: Sequence[Query],
    *,
    ks: Sequence[int] = (1, 2, 3, 5),
    retriever: str | None = None,
    show_progress: bool = False,
) -> dict[str, float | int]:
    """Exact match and F1 of the pipeline reading the top k passages, for each k of ``ks``,
    and beside them top-k retrieval accuracy: the share of questions with a gold answer,
    normalised, in one of the top k passages. All in percent.

    Each question is retrieved once, at the largest k, and its top k read for each k. Keys:
    ``em@k``, ``f1@k``, ``retrieval_accuracy@k`` for each k in increasing order, then
    ``questions`` (scored: those with gold answers) and ``questions_without_answers``.
    """
    cutoffs = sorted(set(ks))
    if not cutoffs or cutoffs[0] < 1:
        raise OdqaError(f"k values must be positive integers, got {list(ks)}")
    scored = [question for question in questions if question.answers]
    if not scored:
        raise InputError(
            f"none of the {len(questions)} questions has gold answers", field="answers"
        )
    pipeline = Pipeline(searcher, reader, retriever=retriever)
    predictions: dict[int, dict[str, str]] = {k: {} for k in cutoffs}
    found = dict.fromkeys(cutoffs, 0)
    progress = tqdm(total=len(scored), desc="answering", unit="question", disable=not show_progress)
    for first in range(0, len(scored), SEARCH_BATCH):
        batch = scored[first : first + SEARCH_BATCH]
        retrieved = pipeline.retrieve([question.text for question in batch], cutoffs[-1])
        for question, evidence in zip(batch, retrieved, strict=True):
            read: dict[int, str] = {}  # passages read -> answer (fewer hits than k: reuse)
            for k in cutoffs:
                top = evidence[:k]
                if len(top) not in read:
                    read[len(top)] = reader.read(question.text, top).text
                predictions[k][question.id] = read[len(top)]
                found[k] += any(answer_in_text(question.answers, item.text) for item in top)
            progress.update()
    progress.close()
    metrics: dict[str, float | int] = {}
    for k in cutoffs:
        scores = qa_metrics(predictions[k], scored)
        metrics[f"em@{k}"] = scores["em"]
        metrics[f"f1@{k}"] = scores["f1"]
        metrics[f"retrieval_accuracy@{k}"] = 100.0 * found[k] / len(scored)
    metrics["questions"] = len(scored)
    metrics["questions_without_answers"] = len(questions) - len(scored)
    return metrics


def evaluate_reader(
    reader: Reader, squad_json: str | Path, *, show_progress: bool = False
) -> dict[str, float]:
    """Exact match and F1 (percent) of ``reader`` given each question of a SQuAD file with
    its own paragraph only (no retrieval): the reader's ceiling in the pipeline."""
    paragraphs = {document.id: document for document in squad.read_documents(squad_json)}
    questions = [question for question in squad.read_queries(squad_json) if question.answers]
    predictions = {}
    for question in tqdm(questions, desc="reading", unit="question", disable=not show_progress):
        paragraph = paragraphs[question.metadata["doc_id"]]
        evidence = Evidence(paragraph.id, f"{paragraph.id}#0", paragraph.text, paragraph.title)
        predictions[question.id] = reader.read(question.text, [evidence]).text
    return qa_metrics(predictions, questions)
