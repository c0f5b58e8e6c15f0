"""Reading documents, queries and judgements in any supported format, picked by ``fmt``.

With ``fmt="auto"`` the format follows from the path: a folder is BEIR (``corpus.jsonl``,
``queries.jsonl``, ``qrels/``) or, for documents, a saved Hugging Face ``datasets`` folder or
a folder of ``.txt``/``.md`` files; a file goes by its suffix (``.gz`` aside; ``.parquet``
is parquet), and a ``.json`` file by its content: top-level key ``data`` is SQuAD,
``questions`` is BioASQ, one object per line is JSONL.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from odqa.corpus import beir, bioasq, delimited, jsonl, squad, tables, textdir
from odqa.corpus.records import Document, Qrels, Query
from odqa.corpus.textio import load_json, open_binary, read_lines
from odqa.errors import InputError

DOCUMENT_FORMATS = (
    "jsonl",
    "csv",
    "tsv",
    "beir",
    "parquet",
    "datasets",
    "squad",
    "bioasq",
    "textdir",
)
QUERY_FORMATS = ("jsonl", "tsv", "beir", "squad", "bioasq")
QRELS_FORMATS = ("trec", "beir", "squad", "bioasq")

_DOCUMENT_READERS: dict[str, Callable[[Path], Iterator[Document]]] = {
    "jsonl": jsonl.read_documents,
    "csv": lambda path: delimited.read_documents(path, ","),
    "tsv": lambda path: delimited.read_documents(path, "\t"),
    "beir": lambda path: jsonl.read_documents(beir.corpus_file(path)),
    "parquet": tables.read_parquet,
    "datasets": tables.read_dataset,
    "squad": squad.read_documents,
    "bioasq": bioasq.read_documents,
    "textdir": textdir.read_documents,
}
_QUERY_READERS: dict[str, Callable[[Path], list[Query]]] = {
    "jsonl": jsonl.read_queries,
    "tsv": delimited.read_queries,
    "beir": lambda path: jsonl.read_queries(beir.queries_file(path)),
    "squad": squad.read_queries,
    "bioasq": bioasq.read_queries,
}
_QRELS_READERS: dict[str, Callable[[Path], Qrels]] = {
    "trec": lambda path: delimited.read_qrels(path, "trec"),
    "beir": lambda path: delimited.read_qrels(beir.qrels_file(path), "beir"),
    "squad": squad.read_qrels,
    "bioasq": bioasq.read_qrels,
}


def read_documents(path: str | Path, fmt: str = "auto") -> Iterator[Document]:
    """Stream the documents of a corpus; memory stays bounded (JSON formats aside).

    The format is checked at once; records are read (and checked) as they are consumed.
    """
    path = Path(path)
    return _DOCUMENT_READERS[_resolve(path, fmt, DOCUMENT_FORMATS, _guess_documents)](path)


LINE_FORMATS = {"jsonl": 0, "csv": 1, "tsv": 1, "beir": 0}  # format: header lines
TABLE_ROWS = {"parquet": tables.parquet_rows, "datasets": tables.dataset_rows}
COUNT_BLOCK = 1 << 24


def count_documents(path: str | Path, fmt: str = "auto") -> int | None:
    """About how many documents a corpus holds, fast (its lines, gzip or not, header aside;
    a table's rows from its metadata); None for formats whose records are not lines. Blank
    lines count: an upper bound."""
    path = Path(path)
    kind = _resolve(path, fmt, DOCUMENT_FORMATS, _guess_documents)
    if kind in TABLE_ROWS:
        return TABLE_ROWS[kind](path)
    if kind not in LINE_FORMATS:
        return None
    lines, last = 0, b"\n"
    try:
        with open_binary(beir.corpus_file(path) if kind == "beir" else path) as handle:
            while block := handle.read(COUNT_BLOCK):
                lines += block.count(b"\n")
                last = block[-1:]
    except (OSError, EOFError, zlib.error):
        return None  # the reading proper reports it, naming the line
    return max(0, lines + (last != b"\n") - LINE_FORMATS[kind])


def read_queries(path: str | Path, fmt: str = "auto") -> list[Query]:
    """The queries of a query file or a BEIR folder; a file without any is an InputError."""
    path = Path(path)
    kind = _resolve(path, fmt, QUERY_FORMATS, _guess_queries)
    queries = _QUERY_READERS[kind](path)
    if not queries:
        source = beir.queries_file(path) if kind == "beir" else path
        raise InputError("the file holds no queries", path=source)
    return queries


def read_qrels(path: str | Path, fmt: str = "auto") -> Qrels:
    """Relevance judgements: TREC or BEIR qrels, a BEIR folder, SQuAD or BioASQ JSON.

    A source without any judgement is an InputError."""
    path = Path(path)
    kind = _resolve(path, fmt, QRELS_FORMATS, _guess_qrels)
    qrels = _QRELS_READERS[kind](path)
    if not qrels:
        source = beir.qrels_file(path) if kind == "beir" else path
        raise InputError("the file holds no judgements", path=source)
    return qrels


def _resolve(path: Path, fmt: str, formats: tuple[str, ...], guess: Callable[[Path], str]) -> str:
    """``fmt`` checked against ``formats``, or guessed from the path when it is ``auto``."""
    if fmt != "auto" and fmt not in formats:
        raise InputError(f"unknown format {fmt!r}; expected one of: auto, {', '.join(formats)}")
    if not path.exists():
        raise InputError("no such file or folder", path=path)
    return guess(path) if fmt == "auto" else fmt


def _suffix(path: Path) -> str:
    """The suffix that tells the format, ``.gz`` aside: ``corpus.jsonl.gz`` -> ``.jsonl``."""
    name = path.name.lower()
    return Path(name.removesuffix(".gz")).suffix


def _cannot_tell(path: Path, what: str, expected: str) -> InputError:
    return InputError(
        f"cannot tell the format of this {what} ({expected}); pass the format explicitly",
        path=path,
    )


def _guess_documents(path: Path) -> str:
    if path.is_dir():
        if beir.find_file(path, beir.CORPUS_NAMES):
            return "beir"
        if tables.is_dataset_folder(path):
            return "datasets"
        if textdir.text_files(path):
            _refuse_data_beside_text(path)
            return "textdir"
        expected = (
            "a folder needs corpus.jsonl[.gz] (BEIR), the files of datasets' save_to_disk, "
            "or .txt/.md files (textdir)"
        )
        raise _cannot_tell(path, "corpus folder", expected)
    suffix = _suffix(path)
    if suffix == ".json":
        return _json_format(path, lines_ok=True)
    if suffix in (".jsonl", ".csv", ".tsv"):
        return suffix[1:]
    if suffix in tables.PARQUET_SUFFIXES and not path.name.lower().endswith(".gz"):
        return "parquet"
    expected = (
        f"suffix {suffix or '(none)'!r}; known: .jsonl, .json, .csv, .tsv, each maybe .gz, "
        "and .parquet"
    )
    raise _cannot_tell(path, "corpus", expected)


def _refuse_data_beside_text(folder: Path) -> None:
    """An error when ``folder`` holds data files (``.json``, ``.jsonl``, ``.csv``, ...) at
    its top level beside its ``.txt``/``.md`` files: the collection is most likely the data
    file, and the text files its notes (a README, a licence)."""
    known = {".json", ".jsonl", ".csv", ".tsv", *tables.PARQUET_SUFFIXES}
    data = sorted(
        item.name
        for item in folder.iterdir()
        if item.is_file() and not item.name.startswith(".") and _suffix(item) in known
    )
    if data:
        raise InputError(
            f"holds data files ({', '.join(data[:3])}{', ...' if len(data) > 3 else ''}) beside "
            "its .txt/.md files; pass the data file itself, or the format textdir (--format "
            "textdir) to index the text files",
            path=folder,
        )


def _guess_queries(path: Path) -> str:
    if path.is_dir():
        if beir.find_file(path, beir.QUERIES_NAMES):
            return "beir"
        raise _cannot_tell(path, "query folder", "no queries.jsonl[.gz] (BEIR) in it")
    suffix = _suffix(path)
    if suffix == ".json":
        return _json_format(path, lines_ok=True)
    if suffix in (".jsonl", ".tsv", ".txt"):
        return "jsonl" if suffix == ".jsonl" else "tsv"
    expected = f"suffix {suffix or '(none)'!r}; known: .jsonl, .json, .tsv, .txt, each maybe .gz"
    raise _cannot_tell(path, "query file", expected)


def _guess_qrels(path: Path) -> str:
    if path.is_dir():
        return "beir"
    if _suffix(path) == ".json":
        return _json_format(path, lines_ok=False)
    width = delimited.qrels_width(path)
    if width in (3, 4):
        return "beir" if width == 3 else "trec"
    expected = f"{width} columns on the first line; BEIR qrels have 3, TREC qrels 4"
    raise _cannot_tell(path, "qrels file", expected)


def _json_format(path: Path, *, lines_ok: bool) -> str:
    """``squad``, ``bioasq`` or (when ``lines_ok``) ``jsonl``, from the file's content."""
    lines = read_lines(path)
    first = next((line for _, line in lines if line.strip()), "")
    lines.close()
    try:
        value, whole = json.loads(first), False
    except (ValueError, RecursionError):  # not one JSON value a line: the file is one value
        value, whole = load_json(path), True
    keys = sorted(value) if isinstance(value, dict) else []
    if "data" in keys:
        return "squad"
    if "questions" in keys:
        return "bioasq"
    if lines_ok and not whole and isinstance(value, dict):
        return "jsonl"
    found = f"top-level keys {keys}" if isinstance(value, dict) else "not a JSON object"
    expected = "'data' (SQuAD) or 'questions' (BioASQ)"
    if lines_ok:
        expected += " or one JSON object per line (JSONL)"
    raise _cannot_tell(path, "JSON file", f"{found}; expected {expected}")
