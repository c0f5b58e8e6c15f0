"""Reading training data for retrievers into :class:`~odqa.train.examples.TrainingExample`.

Formats (``fmt="auto"``: a folder is BEIR, a ``.json`` file with a top-level ``data`` key is
SQuAD, anything else is JSONL):

JSONL, one object per line, each line's kind told by its fields:

- pair: ``{"query": "what causes scurvy?", "positive": "Scurvy is caused by ..."}``
- triple: ``{"query": "...", "positive": "...", "negative": "..."}``, or ``"negatives": [...]``
  (what ``odqa mine`` writes)
- labelled pair: ``{"query": "...", "text": "...", "label": 1}``; rows are grouped by query
  text, each positive (label > 0 or true) becomes an example whose negatives are that query's
  label-0 texts, in file order
- n-way with teacher scores: ``{"query": "...", "documents": ["...", "..."], "scores": [12.1,
  8.3]}``, one finite score per document

Every text field may be given by id instead: ``query_id`` (looked up in ``queries``), and
``positive_id``, ``negative_id``, ``negative_ids``, ``text_id``, ``document_ids`` (looked up in
``corpus``; the text is the title, a space, then the text, as the index sees it). When a line
has both a text field and its id field, the text is used.

BEIR folder: one pair per (query, relevant document) of a qrels split (``qrels``: a split name
or a qrels file). SQuAD JSON: one pair per answerable question and its paragraph (the article
title, a space, the context), optionally from some ``articles`` only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from odqa.corpus import beir, jsonl, squad
from odqa.corpus.readers import _json_format, read_documents, read_qrels, read_queries
from odqa.corpus.records import Document
from odqa.corpus.schema import Location, describe, fail
from odqa.errors import InputError
from odqa.train.examples import TrainingExample

FORMATS = ("jsonl", "beir", "squad")
DEFAULT_SPLIT = "train"
ID_FIELDS = {
    "query": "query_id",
    "positive": "positive_id",
    "negative": "negative_id",
    "negatives": "negative_ids",
    "text": "text_id",
    "documents": "document_ids",
}
_SHAPES = {
    frozenset({"query", "positive"}): "pair",
    frozenset({"query", "positive", "negative"}): "triple",
    frozenset({"query", "positive", "negatives"}): "triple",
    frozenset({"query", "text", "label"}): "labelled",
    frozenset({"query", "documents", "scores"}): "scored",
}
_FIELDS = (*ID_FIELDS, "label", "scores")
_KNOWN = {*_FIELDS, *ID_FIELDS.values()}
ACCEPTED = (
    "accepted lines: query + positive (pair); query + positive + negative or negatives "
    "(triple); query + text + label (labelled pair); query + documents + scores (n-way); "
    "each text may be given by id instead (query_id, positive_id, negative_id, negative_ids, "
    "text_id, document_ids)"
)


def document_text(document: Document) -> str:
    """What a retriever sees of a document: its title, a space, then its text."""
    return f"{document.title} {document.text}".strip() if document.title else document.text


def read_training_data(
    path: str | Path,
    *,
    corpus: str | Path | None = None,
    queries: str | Path | None = None,
    qrels: str | Path = DEFAULT_SPLIT,
    articles: range | None = None,
    fmt: str = "auto",
) -> list[TrainingExample]:
    """The training examples of a JSONL file, a BEIR folder or a SQuAD file, in file order.

    ``corpus`` and ``queries`` resolve ids in JSONL lines; ``qrels`` is the BEIR split (or a
    qrels file); ``articles`` keeps only those SQuAD article indexes. Bad input raises
    :class:`InputError` naming the file, the line and the field.
    """
    path = Path(path)
    kind = _format(path, fmt)
    if kind == "beir":
        examples = _read_beir(path, qrels)
    elif kind == "squad":
        examples = _read_squad(path, articles)
    else:
        examples = _read_jsonl(path, _Lookup(corpus, queries))
    if not examples:
        raise InputError("holds no training examples", path=path)
    return examples


def _format(path: Path, fmt: str) -> str:
    """``fmt`` checked, or guessed from the path when it is ``auto``."""
    if fmt != "auto" and fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; expected one of: auto, {', '.join(FORMATS)}")
    if not path.exists():
        raise InputError("no such file or folder", path=path)
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "beir"
    if not path.name.lower().removesuffix(".gz").endswith(".json"):
        return "jsonl"
    found = _json_format(path, lines_ok=True)
    if found not in FORMATS:
        expected = "JSONL lines, a BEIR folder or SQuAD JSON"
        raise InputError(f"{found} JSON is not a training data format ({expected})", path=path)
    return found


class _Lookup:
    """Texts of query and document ids, each file read once, when an id first needs it."""

    def __init__(self, corpus: str | Path | None, queries: str | Path | None) -> None:
        self._paths = {"corpus": corpus, "queries": queries}
        self._texts: dict[str, dict[str, str]] = {}

    def text(self, item_id: str, where: Location, field: str) -> str:
        source = "queries" if field == "query_id" else "corpus"
        path = self._paths[source]
        if path is None:
            raise fail(f"ids need the {source} they come from; pass {source}", where, field)
        if source not in self._texts:
            self._texts[source] = self._load(source, path)
        texts = self._texts[source]
        if item_id not in texts:
            kind = "query" if source == "queries" else "document"
            raise fail(f"no {kind} with id {item_id!r} in {path}", where, field)
        if not texts[item_id].strip():
            raise fail(f"document {item_id!r} is empty in {path}", where, field)
        return texts[item_id]

    @staticmethod
    def _load(source: str, path: str | Path) -> dict[str, str]:
        if source == "queries":
            return {query.id: query.text for query in read_queries(path)}
        return {document.id: document_text(document) for document in read_documents(path)}


def _read_jsonl(path: Path, lookup: _Lookup) -> list[TrainingExample]:
    """Examples of every line; labelled pairs are gathered by query, then placed at their line."""
    numbered: list[tuple[int, TrainingExample]] = []
    groups: dict[str, _Group] = {}
    for line, record in jsonl.read_objects(path):
        where = (path, line)
        kind = _shape(record, where)
        query = _text(record, "query", where, lookup)
        origin = f"{path}:{line}"
        if kind == "labelled":
            group = groups.setdefault(query, _Group(line))
            group.add(line, _text(record, "text", where, lookup), _label(record, where))
        elif kind == "scored":
            documents = _texts(record, "documents", where, lookup)
            scores = _scores(record, len(documents), where)
            numbered.append((line, TrainingExample(query, documents, scores, origin)))
        else:
            texts = [_text(record, "positive", where, lookup)]
            if kind == "triple" and ("negatives" in record or "negative_ids" in record):
                texts += _texts(record, "negatives", where, lookup)
            elif kind == "triple":
                texts.append(_text(record, "negative", where, lookup))
            numbered.append((line, TrainingExample(query, tuple(texts), origin=origin)))
    for query, group in groups.items():
        numbered += group.examples(query, path)
    return [example for _, example in sorted(numbered, key=lambda item: item[0])]


class _Group:
    """The labelled rows of one query: positives with their lines, negatives in file order."""

    def __init__(self, first_line: int) -> None:
        self.first_line = first_line
        self.positives: list[tuple[int, str]] = []
        self.negatives: list[str] = []

    def add(self, line: int, text: str, relevant: bool) -> None:
        if relevant:
            self.positives.append((line, text))
        else:
            self.negatives.append(text)

    def examples(self, query: str, path: Path) -> list[tuple[int, TrainingExample]]:
        if not self.positives:
            message = f"query {query!r} has no row with a positive label (> 0 or true)"
            raise fail(message, (path, self.first_line), "label")
        return [
            (line, TrainingExample(query, (text, *self.negatives), origin=f"{path}:{line}"))
            for line, text in self.positives
        ]


def _shape(record: Mapping[str, Any], where: Location) -> str:
    """The kind of line, from the fields it has."""
    unknown = next((key for key in record if key not in _KNOWN), None)
    if unknown is not None:
        raise fail(f"unknown field; {ACCEPTED}", where, unknown)
    given = frozenset(
        name for name in _FIELDS if name in record or ID_FIELDS.get(name, name) in record
    )
    if "query" not in given:
        raise fail(f"missing field (or query_id); {ACCEPTED}", where, "query")
    if given not in _SHAPES:
        raise fail(f"fields {', '.join(sorted(record))} match no known line; {ACCEPTED}", where)
    return _SHAPES[given]


def _text(record: Mapping[str, Any], name: str, where: Location, lookup: _Lookup) -> str:
    """The text of field ``name``, given as text or looked up by its id field."""
    if name in record:
        return _nonblank(record[name], where, name)
    field = ID_FIELDS[name]
    return lookup.text(_identifier(record[field], where, field), where, field)


def _texts(
    record: Mapping[str, Any], name: str, where: Location, lookup: _Lookup
) -> tuple[str, ...]:
    """The texts of list field ``name``, given as texts or looked up by its id field."""
    field = name if name in record else ID_FIELDS[name]
    items = record[field]
    if not isinstance(items, list):
        raise fail(f"must be an array, got {describe(items)}", where, field)
    if name == "documents" and not items:
        raise fail("empty array", where, field)
    if field == name:
        return tuple(_nonblank(item, where, field, index) for index, item in enumerate(items))
    ids = (_identifier(item, where, field, index) for index, item in enumerate(items))
    return tuple(lookup.text(item_id, where, field) for item_id in ids)


def _nonblank(value: Any, where: Location, field: str, index: int | None = None) -> str:
    item = "" if index is None else f"item {index} "
    if not isinstance(value, str):
        raise fail(f"{item}must be a string, got {describe(value)}", where, field)
    if not value.strip():
        raise fail(f"{item}is empty" if item else "empty text", where, field)
    return value


def _identifier(value: Any, where: Location, field: str, index: int | None = None) -> str:
    item = "" if index is None else f"item {index} "
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise fail(f"{item}must be a string or an integer, got {describe(value)}", where, field)
    if not str(value).strip():
        raise fail(f"{item}is an empty id", where, field)
    return str(value)


def _label(record: Mapping[str, Any], where: Location) -> bool:
    """Whether the row is relevant: label > 0 (or true)."""
    value = record["label"]
    if not isinstance(value, int):
        raise fail(f"must be 0/1 or a boolean, got {describe(value)}", where, "label")
    return value > 0


def _scores(record: Mapping[str, Any], count: int, where: Location) -> tuple[float, ...]:
    """One finite teacher score per document."""
    scores = record["scores"]
    if not isinstance(scores, list):
        raise fail(f"must be an array, got {describe(scores)}", where, "scores")
    if len(scores) != count:
        raise fail(f"{len(scores)} scores for {count} documents", where, "scores")
    for index, score in enumerate(scores):
        number = isinstance(score, int | float) and not isinstance(score, bool)
        if not number or not math.isfinite(score):
            shown = repr(score) if number else describe(score)
            raise fail(f"item {index} must be a finite number, got {shown}", where, "scores")
    return tuple(float(score) for score in scores)


def _qrels_file(folder: Path, qrels: str | Path) -> Path:
    """The qrels of split ``qrels`` in a BEIR folder, or ``qrels`` itself when it is a file."""
    split = str(qrels)
    found = beir.find_file(folder / "qrels", (f"{split}.tsv", f"{split}.tsv.gz"))
    if found is not None:
        return found
    if Path(qrels).is_file():
        return Path(qrels)
    splits = sorted(p.name.split(".")[0] for p in (folder / "qrels").glob("*.tsv*"))
    known = f"; splits found: {', '.join(splits)}" if splits else ""
    raise InputError(f"no qrels split {split!r} (qrels/{split}.tsv){known}", path=folder)


def _read_beir(folder: Path, qrels: str | Path) -> list[TrainingExample]:
    """One pair per (query, document judged relevant) of the split, in qrels order."""
    qrels_path = _qrels_file(folder, qrels)
    judgements = read_qrels(qrels_path)
    questions = {query.id: query.text for query in read_queries(folder, "beir")}
    wanted = {doc for docs in judgements.values() for doc, grade in docs.items() if grade > 0}
    texts = {
        document.id: document_text(document)
        for document in read_documents(folder, "beir")
        if document.id in wanted
    }
    examples = []
    for query_id, docs in judgements.items():
        if query_id not in questions:
            message = f"query {query_id!r} is not in {beir.queries_file(folder)}"
            raise InputError(message, path=qrels_path, field="query-id")
        for doc_id, grade in docs.items():
            if grade <= 0:
                continue
            if not texts.get(doc_id, "").strip():
                state = "empty" if doc_id in texts else "not"
                message = f"document {doc_id!r} is {state} in {beir.corpus_file(folder)}"
                raise InputError(message, path=qrels_path, field="corpus-id")
            origin = f"{qrels_path} {query_id} {doc_id}"
            examples.append(TrainingExample(questions[query_id], (texts[doc_id],), origin=origin))
    return examples


def _read_squad(path: Path, articles: range | None) -> list[TrainingExample]:
    """One pair per answerable question of the chosen articles: question -> its paragraph."""

    def chosen(doc_id: str) -> bool:  # squad documents are "ARTICLE-PARAGRAPH"
        return articles is None or int(doc_id.split("-")[0]) in articles

    paragraphs = {
        document.id: document_text(document)
        for document in squad.read_documents(path)
        if chosen(document.id)
    }
    return [
        TrainingExample(
            query.text, (paragraphs[query.metadata["doc_id"]],), origin=f"{path} {query.id}"
        )
        for query in squad.read_queries(path)
        if query.answers and chosen(query.metadata["doc_id"])
    ]
