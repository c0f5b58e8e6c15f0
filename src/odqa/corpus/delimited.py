"""Delimited text: CSV/TSV corpora with a header row, MS MARCO query TSV, TREC and BEIR qrels."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from odqa.corpus.records import Document, Qrels, Query
from odqa.corpus.schema import (
    ID_KEYS,
    Location,
    column_count_error,
    describe,
    fail,
    unique_documents,
    unique_queries,
)
from odqa.corpus.textio import read_lines

HEADER_IDS = frozenset({"id", "_id", "qid", "query-id", "query_id", "query id"})
QRELS_COLUMNS = {
    "trec": ("query-id", "iteration", "doc-id", "relevance"),
    "beir": ("query-id", "corpus-id", "score"),
}


def _rows(path: str | Path, delimiter: str) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, row)`` for each data row of a CSV/TSV file whose header names the columns."""
    csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 2**31 - 1)))
    reader = csv.reader((line for _, line in read_lines(path)), delimiter=delimiter)
    try:
        header = [name.strip() for name in next((row for row in reader if row), [])]
        if not header:
            return
        _check_header(header, (path, reader.line_num))
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row:
                continue
            if len(row) != len(header):
                raise column_count_error(header, len(row), (path, line))
            yield line, dict(zip(header, row, strict=True))
    except csv.Error as error:
        raise fail(f"malformed row: {error}", (path, reader.line_num)) from None


def _check_header(header: list[str], where: Location) -> None:
    """The header must name a ``text`` column and an id column, each once."""
    found = ", ".join(repr(name) for name in header)
    repeated = next((name for name in header if header.count(name) > 1), None)
    if repeated is not None:
        raise fail("column named twice in the header", where, repeated)
    if "text" not in header:
        raise fail(f"no 'text' column in the header (columns found: {found})", where, "text")
    if not any(key in header for key in ID_KEYS):
        raise fail(f"no 'id' column in the header (columns found: {found})", where, "id")


def _parse_metadata(row: dict[str, str], line: int, path: str | Path) -> dict[str, object]:
    """The row with its ``metadata`` cell decoded from JSON (an empty cell means none)."""
    cell = row.get("metadata")
    if cell is None:
        return dict(row)
    if not cell.strip():
        return {key: value for key, value in row.items() if key != "metadata"}
    try:
        value = json.loads(cell)
    except json.JSONDecodeError:
        raise fail("must be a JSON object", (path, line), "metadata") from None
    if not isinstance(value, dict):
        raise fail(f"must be a JSON object, got {describe(value)}", (path, line), "metadata")
    return {**row, "metadata": value}


def read_documents(path: str | Path, delimiter: str) -> Iterator[Document]:
    """Stream the documents of a CSV (``,``) or TSV (``\\t``) file with a header row."""
    records = ((line, _parse_metadata(row, line, path)) for line, row in _rows(path, delimiter))
    return unique_documents(records, path)


def read_queries(path: str | Path) -> list[Query]:
    """Queries from ``id<TAB>text`` lines (MS MARCO style); a header line is skipped."""
    records = []
    for number, line in read_lines(path):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        query_id, tab, body = text.partition("\t")
        if number == 1 and query_id.strip().lower() in HEADER_IDS:
            continue
        if not tab:
            raise fail("expected 'id<TAB>text'", (path, number), "text")
        records.append((number, {"id": query_id.strip(), "text": body}))
    return unique_queries(records, path)


def qrels_width(path: str | Path) -> int:
    """The number of columns on the first non-blank line of a qrels file (0 if none)."""
    lines = read_lines(path)
    try:
        return next((len(_split(line)) for _, line in lines if line.strip()), 0)
    finally:
        lines.close()


def _split(line: str) -> list[str]:
    """Fields of a qrels line: tab-separated if it has tabs, else whitespace-separated."""
    return [field.strip() for field in line.split("\t")] if "\t" in line else line.split()


def read_qrels(path: str | Path, fmt: str) -> Qrels:
    """Judgements from TREC (``qid iter docid rel``) or BEIR (``qid docid score``) lines."""
    columns = QRELS_COLUMNS[fmt]
    qrels: Qrels = {}
    first_line: dict[tuple[str, str], int] = {}
    for number, line in read_lines(path):
        fields = _split(line)
        if not fields or (number == 1 and fields[0].lower() in HEADER_IDS):
            continue
        if len(fields) != len(columns):
            raise column_count_error(columns, len(fields), (path, number))
        query_id, doc_id = fields[0], fields[-2]
        relevance = _relevance(fields[-1], (path, number), columns[-1])
        judged = qrels.setdefault(query_id, {})
        if judged.get(doc_id, relevance) != relevance:
            first = first_line[query_id, doc_id]
            message = f"judged again with another relevance (first on line {first})"
            raise fail(message, (path, number), columns[-1])
        judged[doc_id] = relevance
        first_line.setdefault((query_id, doc_id), number)
    return qrels


def _relevance(value: str, where: Location, field: str) -> int:
    """A relevance grade, which must be an integer."""
    try:
        return int(value)
    except ValueError:
        raise fail(f"must be an integer, got {value!r}", where, field) from None
