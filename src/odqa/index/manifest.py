"""``manifest.json``: what an index directory holds and how it was made."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import odqa.fs as fs
from odqa._version import __version__
from odqa.errors import IndexFormatError
from odqa.index.collection import DOCUMENTS, DamagedIndexError
from odqa.index.identify import CollectionLanguage

FORMAT_VERSION = 3
MANIFEST_NAME = "manifest.json"
HASH_BLOCK = 1 << 20
PROBLEMS_SHOWN = 2
READABILITY = "readability"
"""A retriever's record of whether its model reads the collection (see
:mod:`odqa.models.readability`)."""

Inventory = dict[str, dict[str, Any]]
"""``manifest.files``: each file's path (relative, ``/``-separated) -> ``{"size", "sha256"}``."""


@dataclass
class Manifest:
    """The self-description of an index directory."""

    source: str
    counts: dict[str, int]
    chunking: dict[str, Any]
    retrievers: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped_ids: list[str] = field(default_factory=list)
    built_on: dict[str, Any] = field(default_factory=dict)
    """Where the build ran when not on this machine alone: ``{"ray": {nodes, cpus, gpus,
    workers, ...}}`` for a build on a Ray cluster (:mod:`odqa.encode.cluster`)."""
    language: dict[str, Any] = field(default_factory=dict)
    """The collection's language as the build found or was told it
    (:class:`odqa.index.identify.CollectionLanguage`); empty in older manifests."""
    files: Inventory | None = None
    """Every file of the index but the manifest, with its size and sha256 (see
    :func:`inventory`); None in manifests written before odqa recorded it."""
    format_version: int = FORMAT_VERSION
    created_with: str = f"odqa {__version__}"
    created_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )

    def write(
        self,
        folder: Path,
        *,
        record_files: bool = True,
        linked_from: tuple[Path, Inventory | None] | None = None,
    ) -> None:
        """Write ``manifest.json`` as a new file (renamed into place, never written in place).

        Written last in a build or update, it records the inventory of what ``folder`` holds
        then (``record_files``): every file's size and sha256 (:func:`inventory`). An update
        gives ``linked_from``: the index its copy was linked from and that index's inventory;
        a file still the very same (a hard link to it) keeps its recorded sha256, so only
        what the update wrote is hashed (``odqa info --check`` still hashes everything).
        """
        if record_files:
            self.files = inventory(folder, linked_from)
        text = json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"
        fs.write_text(folder / MANIFEST_NAME, text)

    @classmethod
    def read(cls, folder: str | Path, *, check: bool = True) -> Manifest:
        """Read and check the manifest of ``folder``; refuses newer format versions.

        With ``check`` (the default, what opening an index does) a damaged index is refused
        too: a file of the inventory missing or of another size, a retriever's folder gone
        (:meth:`damage`). ``check=False`` reads the manifest alone, as ``odqa info`` does.
        """
        path = Path(folder) / MANIFEST_NAME
        fs.recover_directory(folder)  # a swap cut short by a crash puts the old index back
        if Path(folder).is_file():
            raise IndexFormatError(f"{folder}: a file, not an index directory")
        if not Path(folder).is_dir():
            raise IndexFormatError(f"{folder}: no such index directory")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise IndexFormatError(f"{path}: missing; {folder} is not an odqa index") from exc
        except json.JSONDecodeError as exc:
            raise IndexFormatError(f"{path}:{exc.lineno}: damaged manifest: {exc.msg}") from exc
        version = data.get("format_version")
        if not isinstance(version, int):
            raise IndexFormatError(f"{path}: field 'format_version' missing or not an integer")
        if version > FORMAT_VERSION:
            raise IndexFormatError(
                f"{path}: field 'format_version' is {version}, written by "
                f"{data.get('created_with', 'a newer odqa')}; this odqa {__version__} reads "
                f"format {FORMAT_VERSION} and older: upgrade odqa"
            )
        files = data.get("files")
        if files is not None and not (
            isinstance(files, dict)
            and all(
                isinstance(entry, dict) and isinstance(entry.get("size"), int)
                for entry in files.values()
            )
        ):
            raise IndexFormatError(f"{path}: field 'files' is not an inventory of sizes")
        known = {name for name in cls.__dataclass_fields__}
        manifest = cls(**{key: value for key, value in data.items() if key in known})
        if check and (problems := manifest.damage(folder)):
            raise manifest.damaged(folder, problems)
        return manifest

    def damage(self, folder: str | Path) -> list[str]:
        """What is wrong with ``folder`` that costs a stat per file to see: retrievers whose
        folder is gone, files of the inventory missing (a whole folder once) or of another
        size. Without an inventory (older manifests) only the retriever folders are checked."""
        folder = Path(folder)
        problems = self.missing_retrievers(folder)
        gone = {problem.split("/", 1)[0] for problem in problems}
        for relative, entry in (self.files or {}).items():
            top = relative.split("/", 1)[0]
            if top in gone:
                continue
            try:
                size = os.stat(folder / relative).st_size
            except FileNotFoundError:
                if "/" in relative and not (folder / top).exists():
                    gone.add(top)
                    problems.append(f"{top}/ is missing")
                else:
                    problems.append(f"{relative} is missing")
                continue
            if size != entry["size"]:
                problems.append(
                    f"{relative} has {size:,} bytes, the manifest recorded {entry['size']:,}"
                )
        return problems

    def missing_retrievers(self, folder: Path) -> list[str]:
        """Each retriever the manifest lists whose folder is not there (checked only in a
        real index, one with a collection or an inventory, not beside a bare manifest)."""
        if not self.files and not (folder / DOCUMENTS).exists():
            return []
        return [
            f"{name}/ is missing (the manifest lists its retriever)"
            for name in retriever_folders(self.retrievers)
            if not (folder / name).is_dir()
        ]

    def damaged(self, folder: str | Path, problems: list[str]) -> DamagedIndexError:
        """The one-line error for a damaged index: what is wrong, and how to rebuild it."""
        shown = problems[:PROBLEMS_SHOWN]
        more = len(problems) - PROBLEMS_SHOWN
        if more > 0:
            shown[-1] += f" (and {more} more: odqa info --check lists them)"
        return DamagedIndexError(Path(folder), shown, self.rebuild_hint(folder))

    def rebuild_hint(self, folder: str | Path) -> str:
        """How to build this index again, in one command."""
        retrievers = ",".join(self.retrievers) or "bm25,dense"
        command = (
            f"odqa index {shlex.quote(self.source)} {shlex.quote(str(folder))} "
            f"--retrievers {retrievers} --overwrite"
        )
        return f"rebuild it with `{command}`"

    def unreadable(self) -> list[str]:
        """Retrievers whose model was found at build time not to read the collection."""
        return [
            name
            for name, settings in self.retrievers.items()
            if not settings.get(READABILITY, {}).get("readable", True)
        ]

    def default_retriever(self) -> str:
        """What a search naming no retriever uses: hybrid when the index has several
        retrievers that read the collection, else the first that does (else the first)."""
        names = list(self.retrievers)
        unreadable = self.unreadable()
        if not unreadable:
            return "hybrid" if len(names) > 1 else names[0]
        readable = [name for name in names if name not in unreadable]
        return readable[0] if readable else names[0]

    def describe_chunking(self) -> str:
        """How passages were cut, in the unit they were cut in."""
        chunking = self.chunking
        if "words" in chunking:
            return (
                f"windows of {chunking['words']} words overlapping by {chunking['overlap_words']}"
                f" (--chunk-tokens {chunking['tokens']} / --chunk-overlap {chunking['overlap']}"
                " at 1.42 tokens a word; no encoder)"
            )
        return (
            f"windows of {chunking['tokens']} tokens overlapping by {chunking['overlap']} "
            f"({chunking['tokenizer']} tokenizer)"
        )

    def describe(self) -> str:
        """The manifest in words, for ``odqa info``."""
        counts = self.counts
        lines = [
            f"odqa index, format {self.format_version}, made by {self.created_with} "
            f"on {self.created_at}",
            f"source: {self.source}",
            f"documents: {counts.get('documents', 0):,}  passages: {counts.get('passages', 0):,}"
            f"  skipped (empty): {counts.get('skipped_empty', 0):,}"
            f"  deleted: {counts.get('deleted_documents', 0):,}",
            f"chunking: {self.describe_chunking()}",
        ]
        if found := CollectionLanguage.from_record(self.language):
            lines.append(found.describe())
        for name, settings in self.retrievers.items():
            details = ", ".join(
                f"{key}={value}" for key, value in settings.items() if key != READABILITY
            )
            lines.append(f"retriever {name}: {details}")
            if READABILITY in settings:
                lines.append(f"  {describe_readability(settings[READABILITY])}")
        if unreadable := self.unreadable():
            lines.append(
                f"default retriever: {self.default_retriever()} ({', '.join(unreadable)} "
                "cannot read this collection; --retriever hybrid still fuses it when asked for)"
            )
        if ray := self.built_on.get("ray"):
            from odqa.encode.cluster import describe_shape

            lines.append(f"built on a {describe_shape(ray)}")
        if self.files is not None:
            total = sum(entry["size"] for entry in self.files.values())
            lines.append(f"files: {len(self.files)} ({total:,} bytes), sizes and sha256 recorded")
        return "\n".join(lines)


def describe_readability(reading: dict[str, Any]) -> str:
    """A retriever's readability check, as recorded at build time, in words."""
    from odqa.models.readability import PIECES_PER_LETTER_MAX, UNK_RATE_MAX  # (loads torch)

    if not reading.get("measured", True):
        verdict = "reads" if reading.get("readable", True) else "CANNOT read"
        return f"{verdict} the collection: {reading.get('why', 'not measured')} (not measured)"
    verdict = "reads the collection" if reading.get("readable") else "CANNOT read the collection"
    return (
        f"{verdict}: {reading.get('unk_rate', 0):.1%} [UNK] wordpieces, "
        f"{reading.get('pieces_per_letter', 0):.2f} wordpieces a letter in "
        f"{reading.get('texts', 0)} sampled passages (at most {UNK_RATE_MAX:.0%} and "
        f"{PIECES_PER_LETTER_MAX} read)"
    )


def retriever_folders(retrievers: dict[str, Any]) -> list[str]:
    """The folder of each retriever kind the manifest lists (names it does not know: none)."""
    if not retrievers:
        return []
    from odqa.index.catalog import KINDS
    from odqa.index.registry import kind_named

    return [kind_named(name).folder for name in retrievers if name in KINDS]


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def inventory(
    folder: str | Path, linked_from: tuple[Path, Inventory | None] | None = None
) -> Inventory:
    """Every file under ``folder`` but the manifest: its size and sha256, what
    :meth:`Manifest.write` records at the end of a build or update; a file that is the same
    file as the one at its place in ``linked_from``'s index keeps that one's entry."""
    folder = Path(folder)
    origin, known = linked_from if linked_from is not None else (None, None)
    files: Inventory = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if not path.is_file() or relative == MANIFEST_NAME:
            continue
        entry = (known or {}).get(relative)
        if entry is not None and _same_file(path, origin / relative):
            files[relative] = entry
        else:
            files[relative] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    return files


def _same_file(path: Path, other: Path) -> bool:
    try:
        return os.path.samefile(path, other)
    except OSError:
        return False


def is_index(folder: Path) -> bool:
    """Whether ``folder`` looks like an odqa index (it holds a manifest)."""
    return (Path(folder) / MANIFEST_NAME).is_file()
