"""TREC run files: ``qid Q0 docid rank score tag``, one retrieved document a line.

Ranking rule, used everywhere in odqa: documents are ranked by score, highest first; equal
scores are ordered by document id, ascending (plain string order).
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from odqa.errors import InputError
from odqa.fs import atomic_file

Run = dict[str, dict[str, float]]
"""Retrieval results: query id -> document id -> score (higher is better)."""

_COLUMNS = ("qid", "Q0", "docid", "rank", "score", "tag")


def ranked(scores: dict[str, float]) -> list[tuple[str, float]]:
    """``(doc id, score)`` pairs by score descending, ties by doc id ascending."""
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def write_trec_run(run: Run, path: str | Path, tag: str = "odqa") -> None:
    """Write ``run`` in 6-column TREC format, queries sorted by id, atomically.

    Documents are ranked by :func:`ranked`; ranks start at 1. The file is written to a temporary
    sibling and renamed into place, so a reader never sees half a file. A ``.gz`` path is
    gzip-compressed. Ids and the tag must be non-empty and free of whitespace; scores finite.
    """
    _check_token(tag, "tag")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as partial, _open(partial, "xt", gz=path.suffix == ".gz") as out:
        out.writelines(_lines(run, tag))


def read_trec_run(path: str | Path) -> Run:
    """Read a TREC run file (``.gz`` accepted); blank lines are skipped.

    Columns are whitespace separated: ``qid Q0 docid rank score tag``. ``Q0`` and ``tag`` are
    ignored; ``rank`` must be an integer but is not used: the score alone orders results.
    Raises :class:`InputError` naming the file, line and field for a line without 6 columns, a
    rank that is not an integer, a score that is not a finite number, a repeated
    (qid, docid) pair, or a file that cannot be read (missing, not UTF-8, bad gzip).
    """
    path = Path(path)
    run: Run = {}
    try:
        with _open(path, "rt", gz=path.suffix == ".gz") as lines:
            for number, line in enumerate(lines, start=1):
                fields = line.split()
                if fields:
                    _add(run, fields, path, number)
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise InputError(f"cannot read the run file: {error}", path=path) from error
    return run


def _lines(run: Run, tag: str) -> Iterator[str]:
    """The text lines of ``run``, in file order."""
    for query_id in sorted(run):
        _check_token(query_id, "query id")
        for rank, (doc_id, score) in enumerate(ranked(run[query_id]), start=1):
            _check_token(doc_id, "document id")
            if not math.isfinite(score):
                raise InputError(
                    f"query {query_id!r}, document {doc_id!r}: score {score} is not finite"
                )
            yield f"{query_id} Q0 {doc_id} {rank} {float(score)!r} {tag}\n"


def _add(run: Run, fields: list[str], path: Path, number: int) -> None:
    """Parse one split line into ``run``."""
    if len(fields) != len(_COLUMNS):
        raise InputError(
            f"expected 6 columns ({' '.join(_COLUMNS)}), found {len(fields)}",
            path=path,
            line=number,
        )
    query_id, _, doc_id, rank, score_text, _ = fields
    if not rank.lstrip("-").isdigit():
        raise InputError(f"rank {rank!r} is not an integer", path=path, line=number, field="rank")
    try:
        score = float(score_text)
    except ValueError:
        score = math.nan
    if not math.isfinite(score):
        raise InputError(
            f"score {score_text!r} is not a finite number", path=path, line=number, field="score"
        )
    results = run.setdefault(query_id, {})
    if doc_id in results:
        raise InputError(
            f"document {doc_id!r} appears twice for query {query_id!r}",
            path=path,
            line=number,
            field="docid",
        )
    results[doc_id] = score


def _check_token(value: str, what: str) -> None:
    """Refuse a value that would break the whitespace-separated format."""
    if not value or any(char.isspace() for char in value):
        raise InputError(
            f"{what} {value!r} is empty or contains whitespace; TREC runs cannot hold it"
        )


def _open(path: Path, mode: str, *, gz: bool) -> IO[str]:
    """Open a UTF-8 text file, through gzip when ``gz``."""
    if gz:
        return gzip.open(path, mode, encoding="utf-8")  # type: ignore[return-value]
    return path.open(mode, encoding="utf-8")
