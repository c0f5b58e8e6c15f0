"""BioASQ task b JSON ``{"questions": [...]}``: snippets are documents, questions are queries.

A snippet's document id is ``f"{pmid}:{beginSection}:{offsetInBeginSection}-{offsetInEndSection}"``,
so a snippet quoted by several questions is one document. The whole file is parsed at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from odqa.corpus.records import Document, Qrels, Query
from odqa.corpus.schema import IdRegistry, check_id, fail, member, objects
from odqa.corpus.textio import load_json

ANSWER_TYPES = ("yesno", "factoid", "list")


def _questions(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(json_path, question)`` for every question, rejecting duplicate question ids."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise fail("expected a JSON object with a 'questions' array (BioASQ)", (path, None))
    seen = IdRegistry()
    for _, at, question in objects(data, "questions", path):
        question_id = check_id(member(question, "id", str, path, at), (path, None), f"{at}.id")
        seen.add(question_id, (path, None), f"{at}.id")
        yield at, question


def _snippets(path: str | Path) -> Iterator[tuple[str, str, Document]]:
    """``(question_id, json_path, snippet_document)`` for every snippet of every question.

    A question without a ``snippets`` array (as in phase A test sets) has none.
    """
    for question_at, question in _questions(path):
        if "snippets" not in question:
            continue
        for _, at, snippet in objects(question, "snippets", path, question_at):
            yield question["id"], at, _snippet_document(snippet, path, at)


def _snippet_document(snippet: dict[str, Any], path: str | Path, at: str) -> Document:
    url = member(snippet, "document", str, path, at)
    pmid = url.rstrip("/").rsplit("/", 1)[-1]
    section = member(snippet, "beginSection", str, path, at)
    begin = member(snippet, "offsetInBeginSection", int, path, at)
    end = member(snippet, "offsetInEndSection", int, path, at)
    text = member(snippet, "text", str, path, at)
    metadata = {"pmid": pmid, "section": section, "url": url}
    field = "beginSection" if any(char.isspace() for char in section) else "document"
    doc_id = check_id(f"{pmid}:{section}:{begin}-{end}", (path, None), f"{at}.{field}")
    return Document(doc_id, text, metadata=metadata)


def read_documents(path: str | Path) -> Iterator[Document]:
    """Stream each distinct snippet once, in order of first appearance."""
    texts: dict[str, str] = {}
    for _, at, document in _snippets(path):
        known = texts.get(document.id)
        if known is None:
            texts[document.id] = document.text
            yield document
        elif known != document.text:
            message = f"snippet {document.id!r} appears earlier with a different text"
            raise fail(message, (path, None), f"{at}.text")


def read_queries(path: str | Path) -> list[Query]:
    """One query per question: text = body; answers from the exact answer (see ``_answers``)."""
    queries = []
    for at, question in _questions(path):
        body = member(question, "body", str, path, at)
        if not body.strip():
            raise fail("empty query text", (path, None), f"{at}.body")
        kind = member(question, "type", str, path, at)
        exact = question.get("exact_answer")
        metadata = {
            "type": kind,
            "exact_answer": exact,
            "ideal_answer": question.get("ideal_answer"),
        }
        queries.append(Query(question["id"], body, _answers(kind, exact), metadata))
    return queries


def _answers(kind: str, exact: Any) -> tuple[str, ...]:
    """Gold answers: "yes"/"no" for yes/no questions, the exact strings for factoid/list."""
    if kind not in ANSWER_TYPES:
        return ()
    answers = [text.strip() for text in _strings(exact) if text.strip()]
    if kind == "yesno":
        answers = [text.lower() for text in answers]
    return tuple(dict.fromkeys(answers))


def _strings(value: Any) -> Iterator[str]:
    """Every string in a nest of lists."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def read_qrels(path: str | Path) -> Qrels:
    """Each question judges the documents of its snippets relevant."""
    qrels: Qrels = {}
    for question_id, _, document in _snippets(path):
        qrels.setdefault(question_id, {})[document.id] = 1
    return qrels
