"""Reading a URL list: one URL per line, ``#`` comments and blank lines skipped.

Lines that are not http(s) URLs are collected with their reason instead of raising, so one bad
line never stops a run; a URL given twice is kept once, the repeat noted with its first line.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from odqa.corpus.textio import decode_line, open_binary
from odqa.errors import InputError


@dataclass(frozen=True, slots=True)
class UrlLine:
    """A usable URL and the 1-based line it came from."""

    line: int
    url: str


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that is not a URL (``url`` holds the line's text) or repeats an earlier one."""

    line: int
    url: str
    reason: str


@dataclass(slots=True)
class UrlList:
    """The parsed list: unique URLs in file order, repeats, and lines that are not URLs."""

    urls: list[UrlLine] = field(default_factory=list)
    duplicates: list[BadLine] = field(default_factory=list)
    invalid: list[BadLine] = field(default_factory=list)


def normalize_url(text: str) -> str:
    """``text`` as a canonical http(s) URL (scheme and host lower-cased, fragment dropped).

    Raises ValueError with the reason when ``text`` is not an absolute http(s) URL.
    """
    if any(char.isspace() for char in text):
        raise ValueError("contains whitespace")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("not an http(s) URL")
    if not parts.hostname:
        raise ValueError("no host")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError("bad port") from None
    netloc = parts.netloc.rsplit("@", 1)
    netloc[-1] = netloc[-1].lower()
    return urlunsplit((parts.scheme.lower(), "@".join(netloc), parts.path, parts.query, ""))


def read_url_list(path: str | Path) -> UrlList:
    """Parse the URL file at ``path``; only an unreadable file raises (InputError)."""
    result = UrlList()
    first_seen: dict[str, int] = {}
    number = 0
    with open_binary(path) as handle:
        try:
            for number, raw in enumerate(handle, start=1):
                _add_line(result, first_seen, raw, path, number)
        except (OSError, EOFError, zlib.error) as error:
            message = f"cannot read the file after line {number}: {error}"
            raise InputError(message, path=path) from None
    return result


def _add_line(
    result: UrlList, first_seen: dict[str, int], raw: bytes, path: str | Path, number: int
) -> None:
    """File line ``number`` into ``result`` as a URL, a duplicate, an invalid line or nothing."""
    try:
        text = decode_line(raw, path, number).removeprefix("\ufeff").strip()
    except InputError as error:
        result.invalid.append(BadLine(number, "", f"{path}:{number}: {error.message}"))
        return
    if not text or text.startswith("#"):
        return
    try:
        url = normalize_url(text)
    except ValueError as error:
        result.invalid.append(BadLine(number, text, f"{path}:{number}: {error}"))
        return
    if url in first_seen:
        result.duplicates.append(BadLine(number, url, f"duplicate of line {first_seen[url]}"))
        return
    first_seen[url] = number
    result.urls.append(UrlLine(number, url))
