"""``odqa add``, ``odqa delete`` and ``odqa compact``: change a built index in place, at the
cost of the change (an addition writes new segments; nothing is rebuilt)."""

from pathlib import Path
from typing import Annotated

import typer

from odqa.cli.errors import fail, user_errors
from odqa.cli.options import CorpusPath, Device, InputFormat, Precision

ADD_EPILOG = (
    "Example: odqa add wiki-index this-week.jsonl (any corpus format odqa index reads; "
    "--upsert replaces documents whose ids the index holds already)"
)
DELETE_EPILOG = (
    "Examples: odqa delete wiki-index d12 d40, or odqa delete wiki-index --ids retracted.txt "
    "(one id a line)"
)
COMPACT_EPILOG = "Example: odqa compact wiki-index"
IndexDir = Annotated[Path, typer.Argument(help="An odqa index directory.")]


def describe(report: dict) -> str:
    """An update's report as one line: ``added_documents=3 added_passages=7 …``."""
    return " ".join(f"{key}={value}" for key, value in report.items())


def add(
    index_dir: IndexDir,
    corpus: CorpusPath,
    input_format: InputFormat = "auto",
    upsert: Annotated[
        bool, typer.Option(help="Replace the documents whose ids the index holds already.")
    ] = False,
    device: Device = None,
    precision: Precision = "auto",
) -> None:
    """Add a corpus's documents to an index: cut and encoded as the index's were, written
    beside what it holds (what it costs grows with the documents added, not the index)."""
    from odqa.corpus import read_documents
    from odqa.index import add_documents

    with user_errors(index_dir):
        documents = list(read_documents(corpus, input_format))
        report = add_documents(
            index_dir,
            documents,
            upsert=upsert,
            device=device,
            precision=precision,
            show_progress=True,
        )
        typer.echo(describe(report))


def read_ids(path: Path) -> list[str]:
    """Ids a line (blank lines and surrounding whitespace ignored)."""
    from odqa.corpus.textio import read_lines

    return [line.strip() for _, line in read_lines(path) if line.strip()]


def delete(
    index_dir: IndexDir,
    doc_ids: Annotated[list[str] | None, typer.Argument(help="Document ids to delete.")] = None,
    ids: Annotated[
        Path | None, typer.Option("--ids", help="A file of document ids, one a line.")
    ] = None,
) -> None:
    """Delete documents by id from every retriever of an index; says how many of the ids
    the index did not hold (they are left alone; exit 1 when none was deleted)."""
    from odqa.errors import OdqaError
    from odqa.index import delete_documents

    with user_errors(index_dir):
        wanted = [*(doc_ids or []), *(read_ids(ids) if ids is not None else [])]
        if not wanted:
            raise OdqaError("give ids to delete, or --ids FILE")
        report = delete_documents(index_dir, wanted, missing_ok=True)
        typer.echo(describe(report))
        if report.get("unknown_ids"):
            given = len(set(wanted))
            typer.echo(f"{report['unknown_ids']:,} of the {given:,} ids were not in the index")
    if not report["deleted_documents"]:
        raise fail("error: nothing was deleted: no id given is a live document of the index", 1)


def compact(index_dir: IndexDir) -> None:
    """Merge what additions and deletions left apart (BM25's segments, without the deleted
    passages' postings; dense's added segments): searches find the same, faster after many
    changes. What it costs grows with the index."""
    from odqa.index import compact_index

    with user_errors(index_dir):
        typer.echo(describe(compact_index(index_dir)) or "nothing to merge")
