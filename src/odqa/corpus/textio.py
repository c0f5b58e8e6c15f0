"""Reading UTF-8 text files, gzipped or not, with errors that name the file and the line.

Gzip is recognised by its magic bytes, so ``corpus.jsonl.gz`` and a gzipped file with any
other name both read transparently. A byte-order mark at the start is dropped; a NUL byte is
refused (the mark of a binary or UTF-16 file), as is JSON that cannot be held as text: a lone
surrogate escape (``"\\ud800"``) or values nested deeper than :data:`MAX_JSON_DEPTH`.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from odqa.corpus.records import MAX_DOCUMENT_BYTES
from odqa.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
MAX_JSON_DEPTH = 100
"""Arrays and objects nested deeper than this are refused: nothing odqa reads needs more, and
writing them back (the index's ``documents.jsonl``) would exhaust the recursion limit."""
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


def _nul_byte(text: str, path: str | Path, line: int) -> InputError:
    """The error for a NUL character in ``text`` (one line of the file)."""
    column = text.index("\0") + 1
    message = f"a NUL byte at column {column}: is this a binary or UTF-16 file?"
    return InputError(message, path=path, line=line)


def decode_line(raw: bytes, path: str | Path, line: int) -> str:
    """``raw`` decoded as UTF-8; an InputError names the line and column of a bad or NUL byte."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _bad_utf8(raw, error.start, path, line) from None
    if "\0" in text:
        raise _nul_byte(text, path, line)
    return text


def too_large(what: str) -> str:
    """The refusal of a line, file or value over :data:`MAX_DOCUMENT_BYTES`."""
    limit = MAX_DOCUMENT_BYTES
    size = f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit / 2**10:g} KiB"
    return f"{what} more than {size}: odqa reads documents of at most {size}; split it"


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` pairs, 1-based, each line keeping its line terminator.

    A byte-order mark at the start of the file is dropped. A line longer than
    :data:`MAX_DOCUMENT_BYTES` is refused before it is read whole.
    """
    with open_binary(path) as handle:
        number = 0
        lines = iter(lambda: handle.readline(MAX_DOCUMENT_BYTES + 1), b"")
        try:
            for number, raw in enumerate(lines, start=1):
                if len(raw) > MAX_DOCUMENT_BYTES:
                    raise InputError(too_large("the line holds"), path=path, line=number)
                text = decode_line(raw, path, number)
                yield number, text.removeprefix("\ufeff") if number == 1 else text
        except _READ_ERRORS as error:
            raise InputError(
                f"cannot read the file after line {number}: {error}", path=path
            ) from None


def read_text(path: str | Path, limit: int | None = None) -> str:
    """The whole file as a string (byte-order mark dropped); bad UTF-8 names its line. A
    file of more than ``limit`` bytes (decompressed) is refused before it is read whole."""
    with open_binary(path) as handle:
        try:
            raw = handle.read(-1 if limit is None else limit + 1)
        except _READ_ERRORS as error:
            raise InputError(f"cannot read the file: {error}", path=path) from None
    if limit is not None and len(raw) > limit:
        raise InputError(too_large("the file holds"), path=path)
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        start = raw.rfind(b"\n", 0, error.start) + 1
        line = raw.count(b"\n", 0, error.start) + 1
        raise _bad_utf8(raw[start : error.start + 1], error.start - start, path, line) from None
    nul = text.find("\0")
    if nul >= 0:
        start = text.rfind("\n", 0, nul) + 1
        line = text.count("\n", 0, nul) + 1
        raise _nul_byte(text[start : nul + 1], path, line)
    return text


def parse_json(text: str, path: str | Path, line: int | None = None, **hooks: Any) -> Any:
    """``text`` parsed as JSON and checked (see :func:`check_json`); errors name the file,
    the line (``line`` for one line of a file; else the line in ``text``) and the field.

    ``hooks`` go to :func:`json.loads` (``parse_float`` ...)."""
    try:
        value = json.loads(text, **hooks)
    except json.JSONDecodeError as error:
        message = f"malformed JSON at column {error.colno}: {error.msg}"
        raise InputError(message, path=path, line=error.lineno if line is None else line) from None
    except RecursionError:
        message = f"malformed JSON: nested too deeply (at most {MAX_JSON_DEPTH} levels)"
        raise InputError(message, path=path, line=line) from None
    except ValueError as error:  # an integer too long to convert, for one
        reason = "a number with too many digits" if "digits" in str(error) else str(error)
        raise InputError(f"malformed JSON: {reason}", path=path, line=line) from None
    escaped = "\\ud" in text or "\\uD" in text  # a lone surrogate can only come from an escape
    if not hooks and (escaped or text.count("[") + text.count("{") > MAX_JSON_DEPTH):
        check_json(value, path, line)
    return value


def check_json(value: Any, path: str | Path | None = None, line: int | None = None) -> None:
    """Refuse a parsed JSON value nested deeper than :data:`MAX_JSON_DEPTH` or holding a lone
    surrogate (a string odqa could not write back as UTF-8); the error names the field."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, at, depth = stack.pop()
        if isinstance(item, str):
            char = None if item.isascii() else lone_surrogate(item)
            if char is not None:
                raise InputError(not_unicode(char), path=path, line=line, field=at or None)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            message = f"nested deeper than {MAX_JSON_DEPTH} levels"
            raise InputError(message, path=path, line=line, field=at or None)
        if isinstance(item, dict):
            members = [(key, at, depth) for key in item]  # a key is checked as a string
            for key, member in item.items():
                members.append((member, f"{at}.{key}" if at else key, depth + 1))
        else:
            members = [(member, f"{at}[{index}]", depth + 1) for index, member in enumerate(item)]
        stack.extend(reversed(members))  # popped in the order they are written


def not_unicode(char: str) -> str:
    """What is wrong with a string holding the lone surrogate ``char``."""
    escape = f"\\u{ord(char):04x}"
    return f"not valid Unicode: a lone surrogate {escape} (half of an escaped character pair)"


def lone_surrogate(text: str) -> str | None:
    """The first surrogate code point in ``text``: in a ``str`` one is always alone."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return text[error.start]
    return None


def load_json(path: str | Path) -> Any:
    """Parse the file as one JSON value; a syntax error names its line and column."""
    return parse_json(read_text(path), path)
