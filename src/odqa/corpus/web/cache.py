"""An on-disk cache of successful responses, so that no URL is downloaded twice.

Each entry is two files named by the SHA-256 of the URL, in a folder named by its first two hex
digits: ``<hash>.body`` (the raw bytes) and ``<hash>.json`` (url, status, content type, time).
Both are written to a temporary name and renamed, the JSON last, so an interrupted write leaves
no entry that looks complete.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import odqa.fs as fs
from odqa.corpus.web.fetcher import Page


class ResponseCache:
    """Pages stored under ``folder``, keyed by URL."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _paths(self, url: str) -> tuple[Path, Path]:
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
        stem = self.folder / digest[:2] / digest
        return stem.with_suffix(".body"), stem.with_suffix(".json")

    def get(self, url: str) -> Page | None:
        """The stored page for ``url``, or None when absent or unreadable."""
        body_path, meta_path = self._paths(url)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            body = body_path.read_bytes()
            if meta["url"] != url:
                return None
            return Page(url, int(meta["status"]), meta["content_type"], meta["fetched_at"], body)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, page: Page) -> None:
        """Store ``page``, replacing any earlier entry for its URL."""
        body_path, meta_path = self._paths(page.url)
        body_path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "url": page.url,
            "status": page.status,
            "content_type": page.content_type,
            "fetched_at": page.fetched_at,
        }
        fs.write_bytes(body_path, page.body)
        fs.write_bytes(meta_path, json.dumps(meta, ensure_ascii=False).encode("utf-8"))
