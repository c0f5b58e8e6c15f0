"""``manifest.json``: what an index directory holds and how it was made."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from odqa import fs
from odqa._version import __version__
from odqa.errors import IndexFormatError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


@dataclass
class Manifest:
    """The self-description of an index directory."""

    source: str
    counts: dict[str, int]
    chunking: dict[str, Any]
    retrievers: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped_ids: list[str] = field(default_factory=list)
    format_version: int = FORMAT_VERSION
    created_with: str = f"odqa {__version__}"
    created_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )

    def write(self, folder: Path) -> None:
        """Write ``manifest.json`` as a new file (renamed into place, never written in place)."""
        text = json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"
        fs.write_text(folder / MANIFEST_NAME, text)

    @classmethod
    def read(cls, folder: str | Path) -> Manifest:
        """Read and check the manifest of ``folder``; refuses newer format versions."""
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
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})

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
            f"chunking: windows of {self.chunking['tokens']} tokens overlapping by "
            f"{self.chunking['overlap']} ({self.chunking['tokenizer']} tokenizer)",
        ]
        for name, settings in self.retrievers.items():
            details = ", ".join(f"{key}={value}" for key, value in settings.items())
            lines.append(f"retriever {name}: {details}")
        return "\n".join(lines)


def is_index(folder: Path) -> bool:
    """Whether ``folder`` looks like an odqa index (it holds a manifest)."""
    return (Path(folder) / MANIFEST_NAME).is_file()
