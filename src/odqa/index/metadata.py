"""Documents' metadata as columns, for filters: one memory-mapped array a field and kind.

A search that filters (``where={"year": 2020}``) needs, for every document, the value of a
few fields; reading them from ``documents.jsonl`` would parse every document of the index.
So the build also writes, for each top-level metadata field, by document number:

- ``metadata/fNNN.num.npy``: float64, the field's value where it is a number, NaN elsewhere;
- ``metadata/fNNN.key.npy``: int64, a 64-bit hash of the value where it is a string or a
  boolean, 0 elsewhere (so equality needs no vocabulary held in memory, at build or search);

and ``metadata/fields.json`` naming the fields, their files and kinds. At 10M documents a
field costs 80 MB a kind on disk, memory-mapped at search time: a filter is a vectorised
comparison over one column (tens of milliseconds), not a parse of the corpus. numpy rather
than pyarrow/parquet: the arrays are what the retrievers' masks are made of, they are
memory-mapped as they are, and no new dependency comes with them.

Values that are arrays or objects are not kept as columns (the field is listed as
``nested``), nor are numbers that are not finite (NaN, infinities, 1e400: listed as
``not_finite``); null is "no value". Which kinds of key a field holds is listed too (``str``,
``bool``), so a filter of the wrong type is refused rather than matching nothing. At most
:data:`MAX_FIELDS` fields are kept, in the order first seen; the others are counted.
Columns are written streaming, a batch at a time: a field first seen at document n starts
with n empty values.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import odqa.fs as fs
from odqa.corpus import Document
from odqa.errors import IndexFormatError

FOLDER = "metadata"
FIELDS = "fields.json"
FORMAT = 1
MAX_FIELDS = 64
FILL_BLOCK = 1 << 20
KEYS_CACHED = 1 << 16
NUMBER, KEY = "num", "key"
NESTED, NOT_FINITE = "nested", "not_finite"
EMPTY = {NUMBER: np.nan, KEY: 0}
DTYPES = {NUMBER: np.float64, KEY: np.int64}
_PLAIN = {str: KEY, bool: KEY, int: NUMBER, float: NUMBER}
_LARGEST = sys.float_info.max


def value_key(value: str | bool) -> int:
    """The 64-bit key of a string or boolean value (never 0, which means "no value")."""
    data = (b"b1" if value else b"b0") if isinstance(value, bool) else b"s" + value.encode()
    key = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)
    return key or 1


def is_number(value: Any) -> bool:
    """A JSON number (booleans are not), of any size or finiteness."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_float(value: int | float) -> float | None:
    """``value`` as a finite float; None for NaN, infinities and integers past float's range."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class _Column:
    """One field's kind (numbers or keys), appended a batch at a time."""

    def __init__(self, path: Path, kind: str, before: int) -> None:
        self.kind = kind
        self.appender = fs.NpyAppender(path, DTYPES[kind])
        for start in range(0, before, FILL_BLOCK):
            self.append(np.full(min(FILL_BLOCK, before - start), EMPTY[kind], DTYPES[kind]))

    def append(self, values: np.ndarray) -> None:
        self.appender.append(values)


class MetadataWriter:
    """Writes the metadata columns of documents appended in order (see the module's text)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / FOLDER
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self.fields: dict[str, dict[str, Any]] = {}
        self._columns: dict[tuple[str, str], _Column] = {}
        self.dropped: set[str] = set()
        self._keys: dict[tuple[type, str | bool], int] = {}

    def add(self, documents: Sequence[Document]) -> None:
        """Append the metadata of ``documents`` (numbers ``count`` on)."""
        values: dict[tuple[str, str], list[tuple[int, float | int]]] = {}
        keys = self._keys
        for position, document in enumerate(documents):
            for name, value in document.metadata.items():
                kind = self._kind(name, value)
                if kind == NUMBER:
                    values.setdefault((name, kind), []).append((position, float(value)))
                elif kind == KEY:
                    key = keys.get((type(value), value))
                    if key is None:  # hashing is most of the cost: repeated values skip it
                        if len(keys) >= KEYS_CACHED:
                            keys.clear()
                        key = keys[(type(value), value)] = value_key(value)
                    values.setdefault((name, kind), []).append((position, key))
        for key, column in self._columns.items():
            found = values.pop(key, [])
            column.append(_filled(len(documents), column.kind, found))
        for (name, kind), found in values.items():  # kinds first seen in this batch
            info = self.fields[name]
            info[kind] = True
            column = _Column(self.folder / f"{info['file']}.{kind}.npy", kind, self.count)
            column.append(_filled(len(documents), kind, found))
            self._columns[(name, kind)] = column
        self.count += len(documents)

    def _kind(self, name: str, value: Any) -> str | None:
        """The column ``value`` goes to (None: not kept), registering the field if new and
        noting what it holds."""
        kind = _PLAIN.get(type(value))
        info = self.fields.get(name)
        if kind is None or info is None:  # the rare cases: a new field, null, nested...
            if value is None or name in self.dropped:
                return None
            if info is None:
                if len(self.fields) >= MAX_FIELDS:
                    self.dropped.add(name)
                    return None
                info = self.fields[name] = {
                    "file": f"f{len(self.fields):03d}",
                    NUMBER: False,
                    KEY: False,
                }
            if kind is None:  # a subclass of a plain type, or a list or an object
                kind = (
                    NUMBER if is_number(value) else KEY if isinstance(value, str | bool) else None
                )
            if kind is None:
                info[NESTED] = True
                return None
        if kind == KEY:
            info["bool" if isinstance(value, bool) else "str"] = True
            return KEY
        if -_LARGEST <= value <= _LARGEST:  # NaN is not
            return NUMBER
        info[NOT_FINITE] = True
        return None

    def close(self) -> None:
        """Finish the columns and write ``fields.json``."""
        for column in self._columns.values():
            column.appender.close(expected=self.count)
        record = {
            "format": FORMAT,
            "documents": self.count,
            "fields": self.fields,
            "dropped_fields": sorted(self.dropped)[:100],
        }
        fs.write_text(self.folder / FIELDS, json.dumps(record, indent=1, ensure_ascii=False))


def _filled(count: int, kind: str, found: list[tuple[int, float | int]]) -> np.ndarray:
    """A batch's column: ``found`` ``(position, value)`` pairs, empty elsewhere."""
    column = np.full(count, EMPTY[kind], DTYPES[kind])
    if found:
        positions, values = zip(*found, strict=True)
        column[list(positions)] = values
    return column


def field_summary(folders: Sequence[Path]) -> str | None:
    """One line naming the fields filters can match and what they hold, for ``odqa info``,
    from a collection's segment ``folders`` (None for an index without columns; a damaged
    description is said so, not raised)."""
    held: dict[str, set[str]] = {}
    for folder in folders:
        path = folder / FOLDER / FIELDS
        if not path.is_file():
            return None if folder == folders[0] else _unreadable(path, folders[0], "missing")
        try:
            fields = json.loads(path.read_text(encoding="utf-8"))["fields"]
            for name, info in fields.items():
                kinds = held.setdefault(name, set())
                kinds.update(_held_kinds(info))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return _unreadable(path, folders[0], repr(exc))
    order = ("numbers", "strings", "booleans", "strings or booleans")
    listed = ", ".join(
        f"{name} ({' and '.join(sorted(kinds, key=order.index))})"
        for name, kinds in held.items()
        if kinds
    )
    return f"metadata fields for --where: {listed or 'none'}"


def _held_kinds(info: dict[str, Any]) -> list[str]:
    """What a field's columns hold, in words (an index before odqa told strings from
    booleans: "strings or booleans")."""
    held = ["numbers"] if info[NUMBER] else []
    if info[KEY]:
        flags = (("str", "strings"), ("bool", "booleans"))
        held += [words for flag, words in flags if info.get(flag)] or ["strings or booleans"]
    return held


def _unreadable(path: Path, index: Path, why: str) -> str:
    return (
        f"metadata fields for --where: unreadable, {path} is damaged ({why}); "
        f"rebuild the index with `odqa index CORPUS {index} --overwrite`"
    )


class MetadataColumns:
    """The metadata columns of an index, memory-mapped; ``None`` fields when absent."""

    def __init__(self, index: Path, documents: int) -> None:
        self.folder = index / FOLDER
        path = self.folder / FIELDS
        if not path.is_file():
            raise IndexFormatError(
                f"{index}: the index has no metadata columns (it was built before odqa kept "
                f"them), so it cannot be filtered; rebuild it with `odqa index CORPUS {index} "
                "--overwrite`"
            )
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            self.fields: dict[str, dict[str, Any]] = record["fields"]
            self.dropped: list[str] = record.get("dropped_fields", [])
            count = record["documents"]
            if not all(isinstance(info, dict) and "file" in info for info in self.fields.values()):
                raise ValueError("a field without its file")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IndexFormatError(f"{path}: damaged metadata description ({exc})") from exc
        if count != documents:
            raise IndexFormatError(
                f"{path}: describes {count:,} documents, the index has {documents:,}; "
                f"rebuild it with `odqa index CORPUS {index} --overwrite`"
            )
        self.documents = documents
        self._arrays = {  # all at once: the columns of one index, never of two
            (name, kind): self._load(name, kind)
            for name in self.fields
            for kind in self.kinds(name)
        }

    def kinds(self, name: str) -> tuple[str, ...]:
        """The kinds of value field ``name`` holds: ``num`` and/or ``key``."""
        info = self.fields[name]
        return tuple(kind for kind in (NUMBER, KEY) if info.get(kind))

    def _load(self, name: str, kind: str) -> np.ndarray:
        path = self.folder / f"{self.fields[name]['file']}.{kind}.npy"
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise IndexFormatError(f"{path}: missing or unreadable ({exc})") from exc
        if array.shape != (self.documents,):
            raise IndexFormatError(f"{path}: shape {array.shape}, expected ({self.documents},)")
        return array

    def column(self, name: str, kind: str) -> np.ndarray:
        """Field ``name``'s column of ``kind``, by document number (memory-mapped)."""
        return self._arrays[(name, kind)]


class JoinedColumns:
    """The metadata columns of a collection's segments as one (the interface of
    :class:`MetadataColumns`): a field's column is the segments' columns in order, empty
    where a segment lacks the field; what a field holds is what any segment's holds."""

    def __init__(self, parts: Sequence[MetadataColumns]) -> None:
        self.parts = list(parts)
        self.documents = sum(part.documents for part in self.parts)
        self.fields: dict[str, dict[str, Any]] = {}
        for part in self.parts:
            for name, info in part.fields.items():
                merged = self.fields.setdefault(name, {NUMBER: False, KEY: False})
                for flag, value in info.items():
                    if flag != "file":
                        merged[flag] = bool(merged.get(flag)) or bool(value)
        self.dropped = sorted({name for part in self.parts for name in part.dropped})
        self._columns: dict[tuple[str, str], np.ndarray] = {}

    def kinds(self, name: str) -> tuple[str, ...]:
        """The kinds of value field ``name`` holds: ``num`` and/or ``key``."""
        info = self.fields[name]
        return tuple(kind for kind in (NUMBER, KEY) if info.get(kind))

    def column(self, name: str, kind: str) -> np.ndarray:
        """Field ``name``'s column of ``kind`` over every segment (joined once, kept)."""
        if len(self.parts) == 1:
            return self.parts[0].column(name, kind)
        if (name, kind) not in self._columns:
            self._columns[(name, kind)] = np.concatenate(
                [
                    part.column(name, kind)
                    if name in part.fields and kind in part.kinds(name)
                    else np.full(part.documents, EMPTY[kind], DTYPES[kind])
                    for part in self.parts
                ]
            )
        return self._columns[(name, kind)]
