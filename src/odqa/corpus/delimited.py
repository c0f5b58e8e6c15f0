"""Delimited text: CSV/TSV corpora with a header row, MS MARCO query TSV, TREC and BEIR qrels.

Quoting differs by format. CSV follows RFC 4180: a field in double quotes may hold commas,
line breaks and doubled quotes (``""``); a quote left open, or text after a closing quote, is
refused, naming the line where the quoted field began. TSV (documents, queries, BEIR qrels)
has no quoting: a quote is an ordinary character and every line is one row.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path

from odqa.corpus.records import Document, Qrels, Query, grade_problem
from odqa.corpus.schema import (
    ID_KEYS,
    Location,
    check_id,
    column_count_error,
    describe,
    fail,
    unique_documents,
    unique_queries,
)
from odqa.corpus.textio import parse_json, read_lines
from odqa.errors import InputError

HEADER_IDS = frozenset({"id", "_id", "qid", "query-id", "query_id", "query id"})
QRELS_COLUMNS = {
    "trec": ("query-id", "iteration", "doc-id", "relevance"),
    "beir": ("query-id", "corpus-id", "score"),
}


def _rows(path: str | Path, delimiter: str) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, row)`` for each data row of a CSV/TSV file whose header names the columns."""
    rows = _csv_rows(path) if delimiter == "," else _tsv_rows(path)
    header: list[str] | None = None
    for first, last, cells in rows:
        if header is None:
            header = [name.strip() for name in cells]
            _check_header(header, (path, first))
            continue
        if len(cells) != len(header):
            error = column_count_error(header, len(cells), (path, first))
            if last > first:
                spans = f"the row spans lines {first}-{last} inside quotes: is a quote left open?"
                error = fail(f"{error.message} ({spans})", (path, first), error.field)
            raise error
        yield first, dict(zip(header, cells, strict=True))


def _tsv_rows(path: str | Path) -> Iterator[tuple[int, int, list[str]]]:
    """``(line, line, cells)`` for each non-empty line: TSV has no quoting, one line a row."""
    for number, line in read_lines(path):
        text = line.removesuffix("\n").removesuffix("\r")
        if text:
            yield number, number, text.split("\t")


def _csv_rows(path: str | Path) -> Iterator[tuple[int, int, list[str]]]:
    """``(first_line, last_line, cells)`` for each non-empty row of a CSV file (RFC 4180).

    Parsing is strict: a quoted field must be closed, and its closing quote followed by a comma
    or the end of the line; the error names the line where the quoted field began.
    """
    csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 2**31 - 1)))
    pending: list[tuple[int, str]] = []  # the lines of the row being read

    def lines() -> Iterator[str]:
        for number, line in read_lines(path):
            pending.append((number, line))
            yield line

    reader = csv.reader(lines(), delimiter=",", strict=True)
    while True:
        try:
            cells = next(reader, None)
        except csv.Error as error:
            raise _csv_error(error, pending, path) from None
        if cells is None:
            return
        first, last = pending[0][0], pending[-1][0]
        pending.clear()
        if cells:
            yield first, last, cells


def _csv_error(error: csv.Error, lines: list[tuple[int, str]], path: str | Path) -> InputError:
    """The error for ``error``, raised by the csv module while reading the row ``lines``."""
    trouble = _quote_trouble(lines)
    if trouble is not None:
        opened, closed = trouble
        if closed is None:
            end = lines[-1][0]
            message = f"a quoted field opened on this line is never closed (it runs to line {end}"
            return fail(f"{message}, the end of the file)", (path, opened))
        since = f" opened on line {opened} (is a quote left open there?)"
        message = "text after the closing quote of a quoted field" + (
            since if closed != opened else ""
        )
        message += '; a quote inside a quoted field is written twice ("")'
        return fail(message, (path, closed))
    number = lines[-1][0] if lines else None
    if "new-line character" in str(error):
        return fail("a carriage return (\\r) inside a row, outside quotes", (path, number))
    return fail(f"malformed row: {error}", (path, number))


def _quote_trouble(lines: list[tuple[int, str]]) -> tuple[int, int | None] | None:
    """Where the quoting of the CSV row ``lines`` goes wrong, as the csv module reads it:
    ``(opened, None)`` for a quoted field opened on line ``opened`` and never closed,
    ``(opened, line)`` for text after its closing quote on ``line``; None if neither."""
    state, opened = "start", 0  # start of a field, in an unquoted field, quoted, just after "
    for number, line in lines:
        for char in line:
            if state == "quoted":
                state = "quote" if char == '"' else "quoted"
            elif state == "quote" and char == '"':
                state = "quoted"
            elif char in ",\r\n":
                state = "start"
            elif state == "quote":
                return opened, number
            elif state == "start" and char == '"':
                state, opened = "quoted", number
            else:
                state = "field"
    return (opened, None) if state == "quoted" else None


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
        value = parse_json(cell, path, line)
    except InputError as error:
        if error.field is not None:
            raise fail(error.message, (path, line), f"metadata.{error.field}") from None
        raise fail(f"must be a JSON object ({error.message})", (path, line), "metadata") from None
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
        query_id = check_id(fields[0], (path, number), columns[0])
        doc_id = check_id(fields[-2], (path, number), columns[-2])
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
    """A relevance grade, which must be an integer trec_eval can hold (:data:`GRADES`)."""
    try:
        grade = int(value)
    except ValueError:
        raise fail(f"must be an integer, got {value!r}", where, field) from None
    problem = grade_problem(grade)
    if problem is not None:
        raise fail(problem, where, field)
    return grade
