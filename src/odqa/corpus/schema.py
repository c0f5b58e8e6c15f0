"""Checking parsed records (JSON objects, CSV rows) and turning them into documents and queries.

Every check raises :class:`~odqa.errors.InputError` naming the file, the line (where the format
has lines) and the field.

Ids (of documents, queries and judgements) are strings as written. Every id must be fit for a
TREC run file, whose columns are separated by whitespace: not empty, free of whitespace
(spaces, tabs, line breaks) and of NUL characters (see :func:`id_problem`). The readers refuse
any other id, so no id that ``odqa index`` accepts can fail later in ``odqa eval --run-out``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from odqa.corpus.records import MAX_DOCUMENT_BYTES, Document, Query
from odqa.corpus.textio import too_large
from odqa.errors import InputError

ID_KEYS = ("id", "_id")
_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}

Location = tuple[str | Path, int | None]
"""Where a record sits: the file and its 1-based line (None for formats without lines), or
its :class:`Row` in a table."""


class Row(int):
    """A 1-based row number in a table (parquet, a datasets folder), where text has lines."""

    def __str__(self) -> str:
        return f"row {int(self)}"


def describe(value: Any) -> str:
    """A JSON type name for error messages: 'an object', 'a string', ..."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def fail(message: str, where: Location, field: str | None = None) -> InputError:
    """An InputError located at ``where``."""
    path, line = where
    if isinstance(line, Row):
        return InputError(message, path=path, row=int(line), field=field)
    return InputError(message, path=path, line=line, field=field)


def shown(value: str, limit: int = 60) -> str:
    """``repr(value)``, cut to about ``limit`` characters, for an error message."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"


_WHITESPACE_NAMES = {" ": "a space", "\t": "a tab", "\n": "a line break", "\r": "a line break"}


def id_problem(value: str) -> str | None:
    """Why ``value`` cannot be an id (None if it can): the rule of TREC run files, whose
    columns are separated by whitespace, as :meth:`str.split` splits them, and which are UTF-8
    text (so no NUL character and no lone surrogate either)."""
    if value.split() == [value] and "\0" not in value and value.isascii():
        return None  # the common case, decided in C
    if not value.strip():
        return "is empty" if not value else "is only whitespace"
    char = next((char for char in value if char.isspace()), None)
    if char is not None:
        return f"contains {_WHITESPACE_NAMES.get(char, f'whitespace ({char!r})')}"
    if "\0" in value:
        return "contains a NUL character"
    if not value.isascii() and any("\ud800" <= char <= "\udfff" for char in value):
        return "contains a lone surrogate"
    return None


def check_id(value: str, where: Location, field: str = "id") -> str:
    """``value``, if it can be an id (see :func:`id_problem`); else an InputError."""
    problem = id_problem(value)
    if problem is not None:
        message = f"id {shown(value)} {problem}; ids must be non-empty, without whitespace"
        raise fail(f"{message} (a TREC run file cannot hold them otherwise)", where, field)
    return value


def record_id(record: Mapping[str, Any], where: Location) -> tuple[str, str]:
    """The record's id as a string, and the key it was found under (``id`` or ``_id``).

    A number stands for its text: readers that keep the text as written (JSONL) pass it as a
    string; a non-finite number is refused."""
    key = next((key for key in ID_KEYS if key in record), None)
    if key is None:
        raise fail("missing id (give 'id' or '_id')", where, "id")
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise fail(f"must be a string or a number, got {describe(value)}", where, key)
    if isinstance(value, float) and not math.isfinite(value):
        raise fail(f"must be a finite number, got {value}", where, key)
    text = value if isinstance(value, str) else repr(value)
    if not text.strip():
        raise fail("empty id", where, key)
    return check_id(text, where, key), key


def required_string(record: Mapping[str, Any], key: str, where: Location) -> str:
    """``record[key]``, which must be present and a string (possibly empty)."""
    if key not in record:
        raise fail("missing field", where, key)
    value = record[key]
    if not isinstance(value, str):
        raise fail(f"must be a string, got {describe(value)}", where, key)
    return value


def optional_string(record: Mapping[str, Any], key: str, where: Location) -> str:
    """``record[key]`` if it is a string, "" if absent or null."""
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise fail(f"must be a string, got {describe(value)}", where, key)
    return value


def metadata(record: Mapping[str, Any], used: Iterable[str], where: Location) -> dict[str, Any]:
    """The ``metadata`` object merged with every field not in ``used``: nothing is dropped."""
    base = record.get("metadata")
    if base is None:
        base = {}
    elif not isinstance(base, dict):
        raise fail(f"must be an object, got {describe(base)}", where, "metadata")
    skip = {*used, "metadata"}
    extras = {key: value for key, value in record.items() if key not in skip}
    clash = sorted(extras.keys() & base.keys())
    if clash:
        raise fail("given both as a field and inside 'metadata'", where, clash[0])
    return {**base, **extras}


def make_document(record: Mapping[str, Any], where: Location) -> Document:
    """A Document from a record with ``id``/``_id``, ``text``, optional ``title``, ``metadata``."""
    doc_id, id_key = record_id(record, where)
    text = required_string(record, "text", where)
    title = optional_string(record, "title", where)
    for field, value in (("text", text), ("title", title)):
        if len(value) > MAX_DOCUMENT_BYTES:  # a table's row: a JSONL line is refused sooner
            raise fail(too_large("holds"), where, field)
    return Document(doc_id, text, title, metadata(record, (id_key, "text", "title"), where))


def query_text(record: Mapping[str, Any], key: str, where: Location) -> str:
    """The question text under ``key``: a string that is not blank."""
    text = required_string(record, key, where)
    if not text.strip():
        raise fail("empty query text", where, key)
    return text


def make_query(record: Mapping[str, Any], where: Location) -> Query:
    """A Query from a record with ``id``/``_id``, ``text``, optional ``answers``, ``metadata``."""
    query_id, id_key = record_id(record, where)
    text = query_text(record, "text", where)
    answers = record.get("answers", [])
    if not isinstance(answers, list) or not all(isinstance(item, str) for item in answers):
        raise fail("must be an array of strings", where, "answers")
    return Query(
        query_id, text, tuple(answers), metadata(record, (id_key, "text", "answers"), where)
    )


RECENT_IDS = 1 << 18
"""Ids an :class:`IdRegistry` keeps as strings before it packs them into digests."""


class IdRegistry:
    """The ids seen so far and where each first appeared, to reject duplicates.

    The latest :data:`RECENT_IDS` ids are kept as they are; older ones as a sorted array of
    16-byte BLAKE2b digests beside their places: 24 bytes an id instead of the ~140 of a
    Python dict entry (about 240 MB for 10M ids, not 1.4 GB). Two different ids share a
    digest with a chance of about n² / 2¹²⁹ (10⁻²⁵ for 10M ids).
    """

    def __init__(self, recent: int = RECENT_IDS) -> None:
        self._limit = recent
        self._recent: dict[str, int | None] = {}
        self._digests = np.empty(0, dtype="S16")  # sorted
        self._places = np.empty(0, dtype=np.int64)  # -1: no line
        self._rows = False  # whether the packed places are table rows

    def __len__(self) -> int:
        return len(self._recent) + len(self._digests)

    def add(self, item_id: str, where: Location, field: str = "id") -> None:
        """Record ``item_id``; an InputError if it was seen before."""
        if item_id in self._recent:
            self._refuse(item_id, self._recent[item_id], where, field)
        if len(self._digests):
            digest = _digest(item_id)
            at = int(self._digests.searchsorted(digest))
            # numpy drops a digest's trailing NUL bytes; compare alike
            if at < len(self._digests) and self._digests[at] == digest.rstrip(b"\0"):
                place = int(self._places[at])
                self._refuse(item_id, None if place < 0 else self._place(place), where, field)
        self._recent[item_id] = where[1]
        if len(self._recent) >= self._limit:
            self._pack()

    def _refuse(self, item_id: str, first: int | None, where: Location, field: str) -> None:
        place = str(first) if isinstance(first, Row) else f"line {first}"
        earlier = f" (first on {place})" if first is not None else ""
        raise fail(f"duplicate id {shown(item_id)}{earlier}", where, field)

    def _place(self, number: int) -> int:
        return Row(number) if self._rows else number

    def _pack(self) -> None:
        """Move the recent ids into the sorted digests."""
        self._rows = self._rows or any(isinstance(at, Row) for at in self._recent.values())
        digests = np.array([_digest(item) for item in self._recent], dtype="S16")
        places = np.array([-1 if at is None else at for at in self._recent.values()], np.int64)
        order = np.argsort(digests, kind="stable")
        digests, places = digests[order], places[order]
        slots = np.searchsorted(self._digests, digests)
        self._digests = np.insert(self._digests, slots, digests)
        self._places = np.insert(self._places, slots, places)
        self._recent = {}


def _digest(item_id: str) -> bytes:
    return hashlib.blake2b(item_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def unique_documents(
    records: Iterable[tuple[int, Mapping[str, Any]]], path: str | Path
) -> Iterator[Document]:
    """Documents from ``(line, record)`` pairs, rejecting duplicate ids."""
    seen = IdRegistry()
    for line, record in records:
        document = make_document(record, (path, line))
        seen.add(document.id, (path, line))
        yield document


def unique_queries(
    records: Iterable[tuple[int, Mapping[str, Any]]], path: str | Path
) -> list[Query]:
    """Queries from ``(line, record)`` pairs, rejecting duplicate ids."""
    seen = IdRegistry()
    queries = []
    for line, record in records:
        query = make_query(record, (path, line))
        seen.add(query.id, (path, line))
        queries.append(query)
    return queries


def column_count_error(columns: Sequence[str], found: int, where: Location) -> InputError:
    """The error for a row with ``found`` values where ``columns`` are expected."""
    expected = f"expected {len(columns)} columns ({', '.join(columns)}), found {found}"
    field = columns[found] if found < len(columns) else f"column {len(columns) + 1}"
    return fail(expected, where, field)


def member(obj: Mapping[str, Any], key: str, kind: type, path: str | Path, at: str) -> Any:
    """``obj[key]``, present and of ``kind``; errors name the field by its JSON path ``at.key``."""
    field = f"{at}.{key}" if at else key
    if key not in obj:
        raise fail("missing field", (path, None), field)
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise fail(f"must be {_TYPE_NAMES[kind]}, got {describe(value)}", (path, None), field)
    return value


def objects(
    obj: Mapping[str, Any], key: str, path: str | Path, at: str = ""
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """``(index, json_path, item)`` for the array of objects ``obj[key]``, each item checked."""
    items = member(obj, key, list, path, at)
    for index, item in enumerate(items):
        item_at = f"{at}.{key}[{index}]" if at else f"{key}[{index}]"
        if not isinstance(item, dict):
            raise fail(f"must be an object, got {describe(item)}", (path, None), item_at)
        yield index, item_at, item
