"""SQuAD v1.1/v2.0 JSON: paragraphs are documents, questions are queries.

Paragraph ``p`` of article ``a`` (both 0-based) is document ``f"{a}-{p}"``. The whole file is
parsed at once (it is one JSON value).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from odqa.corpus.records import Document, Qrels, Query
from odqa.corpus.schema import IdRegistry, check_id, fail, member, objects
from odqa.corpus.textio import load_json


def _paragraphs(path: str | Path) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """``(doc_id, json_path, article_title, paragraph)`` for every paragraph of the file."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise fail("expected a JSON object with a 'data' array (SQuAD)", (path, None))
    for article_index, article_at, article in objects(data, "data", path):
        title = member(article, "title", str, path, article_at) if "title" in article else ""
        for index, at, paragraph in objects(article, "paragraphs", path, article_at):
            yield f"{article_index}-{index}", at, title, paragraph


def _questions(path: str | Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(doc_id, json_path, qa)`` for every question, rejecting duplicate question ids."""
    seen = IdRegistry()
    for doc_id, paragraph_at, _, paragraph in _paragraphs(path):
        for _, at, qa in objects(paragraph, "qas", path, paragraph_at):
            question_id = check_id(member(qa, "id", str, path, at), (path, None), f"{at}.id")
            seen.add(question_id, (path, None), f"{at}.id")
            yield doc_id, at, qa


def read_documents(path: str | Path) -> Iterator[Document]:
    """Stream one document per paragraph: title = article title, text = context."""
    for doc_id, at, title, paragraph in _paragraphs(path):
        yield Document(doc_id, member(paragraph, "context", str, path, at), title)


def read_queries(path: str | Path) -> list[Query]:
    """One query per question; answers are the distinct gold texts, in order."""
    queries = []
    for doc_id, at, qa in _questions(path):
        question = member(qa, "question", str, path, at)
        if not question.strip():
            raise fail("empty query text", (path, None), f"{at}.question")
        starts: dict[str, int] = {}
        answers = objects(qa, "answers", path, at) if "answers" in qa else ()
        for _, answer_at, answer in answers:
            text = member(answer, "text", str, path, answer_at)
            starts.setdefault(text, member(answer, "answer_start", int, path, answer_at))
        metadata = {"doc_id": doc_id, "answer_starts": list(starts.values())}
        queries.append(Query(qa["id"], question, tuple(starts), metadata))
    return queries


def read_qrels(path: str | Path) -> Qrels:
    """Each answerable question judges its own paragraph relevant (v2 unanswerables skipped)."""
    return {
        qa["id"]: {doc_id: 1} for doc_id, _, qa in _questions(path) if not qa.get("is_impossible")
    }
