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

from odqa.corpus.schema import id_problem, shown
from odqa.corpus.textio import read_lines
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
    _check_run(run)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as partial, _open(partial, "xt", gz=path.suffix == ".gz") as out:
            out.writelines(_lines(run, tag))
    except OSError as error:
        reason = "is a folder" if path.is_dir() else (error.strerror or str(error))
        raise InputError(f"cannot write the run file: {reason}", path=path) from None


def read_trec_run(path: str | Path) -> Run:
    """Read a TREC run file (``.gz`` accepted); blank lines are skipped.

    Columns are whitespace separated: ``qid Q0 docid rank score tag``; gzip is recognised by
    its content. ``Q0`` and ``tag`` are ignored; ``rank`` must be an integer but is not used:
    the score alone orders results.
    Raises :class:`InputError` naming the file, line and field for a line without 6 columns, a
    rank that is not an integer, a score that is not a finite number, a repeated
    (qid, docid) pair, or a file that cannot be read (missing, a folder, not UTF-8, bad gzip).
    """
    path = Path(path)
    run: Run = {}
    for number, line in read_lines(path):
        fields = line.split()
        if fields:
            _add(run, fields, path, number)
    return run


def _check_run(run: Run) -> None:
    """Refuse a run that cannot be written: an id that is not a TREC token, a non-finite score."""
    for query_id, scores in run.items():
        _check_token(query_id, "query id")
        for doc_id, score in scores.items():
            _check_token(doc_id, "document id")
            if not math.isfinite(score):
                raise InputError(
                    f"query {shown(query_id)}, document {shown(doc_id)}: "
                    f"score {score} is not finite"
                )


def _lines(run: Run, tag: str) -> Iterator[str]:
    """The text lines of ``run``, in file order."""
    for query_id in sorted(run):
        for rank, (doc_id, score) in enumerate(ranked(run[query_id]), start=1):
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
    """Refuse a value that would break the whitespace-separated format: the rule the corpus
    readers apply to every id (:func:`odqa.corpus.schema.id_problem`)."""
    problem = id_problem(value)
    if problem is not None:
        raise InputError(
            f"{what} {shown(value)} {problem}; a TREC run file, whose columns are separated by "
            "whitespace, cannot hold it"
        )


def _open(path: Path, mode: str, *, gz: bool) -> IO[str]:
    """Open a UTF-8 text file, through gzip when ``gz``."""
    if gz:
        return gzip.open(path, mode, encoding="utf-8")  # type: ignore[return-value]
    return path.open(mode, encoding="utf-8")
