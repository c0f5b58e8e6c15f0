"""Reading UTF-8 text files, gzipped or not, with errors that name the file and the line.

Gzip is recognised by its magic bytes, so ``corpus.jsonl.gz`` and a gzipped file with any
other name both read transparently.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from odqa.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
_READ_ERRORS = (OSError, EOFError, zlib.error)


def open_binary(path: str | Path) -> BinaryIO:
    """Open ``path`` for reading bytes, decompressing gzip transparently."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
        if handle.read(2) == GZIP_MAGIC:
            handle.close()
            return gzip.open(path, "rb")
        handle.seek(0)
        return handle
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a folder, expected a file", path=path) from None
    except OSError as error:
        raise InputError(f"cannot read the file: {error.strerror or error}", path=path) from None


def _bad_utf8(raw: bytes, offset: int, path: str | Path, line: int) -> InputError:
    """The error for the undecodable byte at ``offset`` of the line ``raw``."""
    column = len(raw[:offset].decode("utf-8", errors="replace")) + 1
    message = f"not valid UTF-8 (byte 0x{raw[offset]:02x} at column {column})"
    return InputError(message, path=path, line=line)


def decode_line(raw: bytes, path: str | Path, line: int) -> str:
    """``raw`` decoded as UTF-8; an InputError names the line and column of a bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _bad_utf8(raw, error.start, path, line) from None


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` pairs, 1-based, each line keeping its line terminator.

    A byte-order mark at the start of the file is dropped.
    """
    with open_binary(path) as handle:
        number = 0
        try:
            for number, raw in enumerate(handle, start=1):
                text = decode_line(raw, path, number)
                yield number, text.removeprefix("\ufeff") if number == 1 else text
        except _READ_ERRORS as error:
            raise InputError(
                f"cannot read the file after line {number}: {error}", path=path
            ) from None


def read_text(path: str | Path) -> str:
    """The whole file as a string (byte-order mark dropped); bad UTF-8 names its line."""
    with open_binary(path) as handle:
        try:
            raw = handle.read()
        except _READ_ERRORS as error:
            raise InputError(f"cannot read the file: {error}", path=path) from None
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        start = raw.rfind(b"\n", 0, error.start) + 1
        line = raw.count(b"\n", 0, error.start) + 1
        raise _bad_utf8(raw[start : error.start + 1], error.start - start, path, line) from None


def load_json(path: str | Path) -> Any:
    """Parse the file as one JSON value; a syntax error names its line and column."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as error:
        message = f"malformed JSON at column {error.colno}: {error.msg}"
        raise InputError(message, path=path, line=error.lineno) from None
