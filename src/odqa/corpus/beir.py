"""BEIR folders: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` (each maybe .gz)."""

from __future__ import annotations

from pathlib import Path

from odqa.errors import InputError

CORPUS_NAMES = ("corpus.jsonl", "corpus.jsonl.gz")
QUERIES_NAMES = ("queries.jsonl", "queries.jsonl.gz")
QRELS_SPLIT = "test"


def find_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    """The first of ``names`` that exists in ``folder``."""
    return next((folder / name for name in names if (folder / name).is_file()), None)


def _member(path: Path, names: tuple[str, ...]) -> Path:
    """``path`` itself if it is a file, else the first of ``names`` in that folder."""
    if not path.is_dir():
        return path
    found = find_file(path, names)
    if found is None:
        raise InputError(f"not a BEIR folder: it has no {' or '.join(names)}", path=path)
    return found


def corpus_file(path: Path) -> Path:
    """The corpus of a BEIR folder (or ``path`` itself when it is a file)."""
    return _member(path, CORPUS_NAMES)


def queries_file(path: Path) -> Path:
    """The queries of a BEIR folder (or ``path`` itself when it is a file)."""
    return _member(path, QUERIES_NAMES)


def qrels_file(path: Path) -> Path:
    """The test-split judgements of a BEIR folder (or ``path`` itself when it is a file)."""
    if not path.is_dir():
        return path
    names = (f"{QRELS_SPLIT}.tsv", f"{QRELS_SPLIT}.tsv.gz")
    found = find_file(path / "qrels", names)
    if found is None:
        splits = sorted(p.name for p in (path / "qrels").glob("*.tsv*"))
        others = f" (found: {', '.join(splits)}; give one of them directly)" if splits else ""
        raise InputError(f"no qrels/{QRELS_SPLIT}.tsv in the BEIR folder{others}", path=path)
    return found
