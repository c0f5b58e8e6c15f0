"""What a build will take, said once its first batches are in: documents, disk, memory, time.

The figures are extrapolated from the batches so far (the first, or the first two where the
corpus has more than two: their documents' size, their passages, what each kind made of
them) to the corpus's document count, counted fast from its lines
(:func:`odqa.corpus.readers.count_documents`). A build that will not fit the free disk or
the available memory is warned about then, not at 90 %. The time is the last of those
batches' pace (reading, cutting, encoding and indexing it; the first batch also pays for
warming up, 1.5 times the second's at 1M ColBERT passages) kept up for the rest of the
corpus; the progress bar's ETA refines it as the build goes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from odqa.index.kind import Footprint, KindBuilder

PASSAGE_ROW_BYTES = 32
GIB = 1 << 30


@dataclass(frozen=True)
class BuildSoFar:
    """What the batches before the plan showed: documents read (kept), their passages and
    bytes stored; and the seconds the last of them took for its ``timed_documents`` (all of
    them when not given)."""

    documents: int
    passages: int
    stored_bytes: int
    seconds: float = 0.0
    timed_documents: int = 0


def plan_line(
    total_documents: int,
    first: BuildSoFar,
    builders: Mapping[str, KindBuilder],
    target: Path,
) -> tuple[str, list[str]]:
    """One line saying what the build will need, and warnings where it will not fit."""
    scale = total_documents / max(1, first.documents)
    passages = int(first.passages * scale)
    collection = Footprint(
        disk=int(first.stored_bytes * scale) + PASSAGE_ROW_BYTES * passages, memory=0
    )
    kinds = {name: builder.footprint(passages) for name, builder in builders.items()}
    disk = collection.disk + sum(part.disk for part in kinds.values())
    memory = max((part.memory for part in kinds.values()), default=0)
    details = ", ".join(
        f"{name} {gib(part.disk)} disk / {gib(part.memory)} RAM" for name, part in kinds.items()
    )
    line = (
        f"about {total_documents:,} documents, {passages:,} passages: needs about "
        f"{gib(disk)} of disk and {gib(memory)} of memory ({details}; collection "
        f"{gib(collection.disk)})"
    )
    if first.seconds > 0:
        per_document = first.seconds / max(1, first.timed_documents or first.documents)
        rest = per_document * max(0, total_documents - first.documents)
        line += f"; about {duration(rest)} more at the current pace"
    warnings = []
    free = free_disk(target)
    if disk > free:
        warnings.append(
            f"the index will need about {gib(disk)} and {existing(target)} has {gib(free)} free: "
            "free some space or write the index elsewhere"
        )
    available = available_memory()
    if available is not None and memory > available:
        warnings.append(
            f"the build will need about {gib(memory)} of memory and {gib(available)} is "
            "available: it may be killed; see README 'Indexing millions of passages'"
        )
    return line, warnings


def duration(seconds: float) -> str:
    """``seconds`` as people say it: "40 s", "12 min", "3 h 05 min"."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def gib(size: int) -> str:
    return f"{size / GIB:.1f} GiB" if size >= GIB / 10 else f"{size / (1 << 20):.0f} MiB"


def existing(path: Path) -> Path:
    """``path``, or its nearest existing parent."""
    path = path.resolve()
    while not path.exists():
        path = path.parent
    return path


def free_disk(path: Path) -> int:
    return shutil.disk_usage(existing(path)).free


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
