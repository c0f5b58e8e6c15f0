"""The full check of an index directory, for ``odqa info --check``.

Opening an index checks what is cheap (:meth:`Manifest.damage`: every file of the manifest's
inventory there with its recorded size, every retriever's folder there; and what the
collection can tell of itself, :class:`Collection`). The full check reads everything: every
file's size and sha256 against the inventory, files the inventory does not list, and the
collection read through — each document line parses and has the id stored for it, offsets
increase, passages point inside their documents, the counts agree with the manifest's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from odqa.index.collection import DOCUMENTS, PASSAGES, Collection, DamagedIndexError, Segment
from odqa.index.manifest import MANIFEST_NAME, Manifest, sha256_file

SHOWN_PER_KIND = 5
"""Bad documents or passages listed one by one before the rest are counted."""


@dataclass
class CheckReport:
    """What the full check found: ``problems`` (anything that differs), ``notes`` (what
    could not be checked, and why), and how many files and checksums were compared."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    checksums: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def check_index(folder: str | Path, manifest: Manifest | None = None) -> CheckReport:
    """Check every file of the index at ``folder`` against its manifest, and read its
    collection through; nothing is changed."""
    folder = Path(folder)
    manifest = manifest if manifest is not None else Manifest.read(folder, check=False)
    report = CheckReport()
    check_files(folder, manifest, report)
    check_collection(folder, manifest, report)
    return report


def opening_problems(folder: str | Path) -> list[str]:
    """What opening the collection finds wrong (the cheap checks of :class:`Collection`)."""
    try:
        Collection(Path(folder)).close()
    except DamagedIndexError as exc:
        return exc.problems
    return []


def check_files(folder: Path, manifest: Manifest, report: CheckReport) -> None:
    """Sizes and checksums against the inventory; retriever folders; files nobody listed."""
    if manifest.files is None:
        report.notes.append(
            f"the manifest records no file inventory (written by {manifest.created_with}); "
            "sizes and checksums cannot be compared: rebuild the index to record them"
        )
        report.problems += manifest.missing_retrievers(folder)
        return
    listed = manifest.files
    for relative, entry in listed.items():
        path = folder / relative
        if not path.is_file():
            report.problems.append(f"{relative}: missing")
            continue
        report.files += 1
        size = path.stat().st_size
        if size != entry["size"]:
            report.problems.append(
                f"{relative}: {size:,} bytes, the manifest recorded {entry['size']:,}"
            )
            continue
        if "sha256" in entry:
            report.checksums += 1
            digest = sha256_file(path)
            if digest != entry["sha256"]:
                report.problems.append(
                    f"{relative}: sha256 {digest[:12]}…, the manifest recorded "
                    f"{entry['sha256'][:12]}… (same size, other content)"
                )
    report.problems += manifest.missing_retrievers(folder)
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and relative != MANIFEST_NAME and relative not in listed:
            report.problems.append(f"{relative}: not in the manifest's inventory")


def check_collection(folder: Path, manifest: Manifest, report: CheckReport) -> None:
    """Read the collection through: documents, ids, offsets, passages, counts."""
    try:
        collection = Collection(folder)
    except DamagedIndexError as exc:
        report.problems += exc.problems
        return
    try:
        for segment in collection.segments:
            offsets = np.asarray(segment.offsets)
            if offsets[0] != 0 or np.any(np.diff(offsets) <= 0):
                report.problems.append(
                    f"{segment.name(DOCUMENTS)}: its offsets do not increase from 0"
                )
                return
            lengths = check_documents(segment, report)
            if lengths is not None:
                check_passages(segment, lengths, report)
        check_counts(collection, manifest, report)
    finally:
        collection.close()


def check_documents(segment: Segment, report: CheckReport) -> np.ndarray | None:
    """Each document line of a segment parses and carries its stored id; returns the
    texts' lengths."""
    try:
        ids = segment.doc_ids
    except DamagedIndexError as exc:
        report.problems += exc.problems
        return None
    offsets = np.asarray(segment.offsets)
    lengths = np.zeros(segment.num_documents, dtype=np.int64)
    bad: list[int] = []
    with (segment.folder / DOCUMENTS).open("rb") as handle:
        for number in range(segment.num_documents):
            line = handle.read(int(offsets[number + 1] - offsets[number]))
            try:
                record = json.loads(line)
                good = isinstance(record, dict) and record.get("id") == ids[number]
                lengths[number] = len(record.get("text", "")) if good else 0
            except (json.JSONDecodeError, UnicodeDecodeError, TypeError, AttributeError):
                good = False
            if not good:
                bad.append(number + 1)
    if bad:
        shown = ", ".join(map(str, bad[:SHOWN_PER_KIND]))
        more = f" and {len(bad) - SHOWN_PER_KIND:,} more" if len(bad) > SHOWN_PER_KIND else ""
        report.problems.append(
            f"{segment.name(DOCUMENTS)}: line {shown}{more} not the document stored there "
            "(unreadable, or another id)"
        )
        return None
    return lengths


def check_passages(segment: Segment, lengths: np.ndarray, report: CheckReport) -> None:
    """Every passage row of a segment names one of its documents and a span inside its text."""
    rows = np.asarray(segment.passages)
    owners, starts, ends = rows[:, 0] - segment.first_document, rows[:, 2], rows[:, 3]
    inside = (owners >= 0) & (owners < len(lengths))
    safe = np.where(inside, owners, 0)
    good = inside & (starts >= 0) & (starts <= ends) & (ends <= lengths[safe])
    if not good.all():
        bad = np.flatnonzero(~good)
        shown = ", ".join(map(str, bad[:SHOWN_PER_KIND].tolist()))
        report.problems.append(
            f"{segment.name(PASSAGES)}: {len(bad):,} rows point outside their documents "
            f"(rows {shown}…)"
        )


def check_counts(collection: Collection, manifest: Manifest, report: CheckReport) -> None:
    """The manifest's counts are the collection's, less what was deleted."""
    counts = manifest.counts
    live_passages = collection.num_passages - collection.num_deleted
    if counts.get("passages") != live_passages:
        report.problems.append(
            f"{MANIFEST_NAME}: counts {counts.get('passages')} passages, the collection holds "
            f"{live_passages:,} live ones"
        )
    live_documents = collection.num_documents - counts.get("deleted_documents", 0)
    if counts.get("documents") != live_documents:
        report.problems.append(
            f"{MANIFEST_NAME}: counts {counts.get('documents')} documents, the collection holds "
            f"{live_documents:,} live ones"
        )
