"""Index directories: the collection, one folder per retriever kind, and a manifest.

Names are imported on first use, so that what a build needs decides what it loads (a
BM25-only build never imports torch).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from odqa.index.builder import build_index
    from odqa.index.manifest import FORMAT_VERSION, Manifest
    from odqa.index.options import BuildOptions
    from odqa.index.settings import BM25Settings, ColBERTSettings, DenseSettings
    from odqa.index.updates import add_documents, compact_index, delete_documents

_LAZY = {
    "BM25Settings": "odqa.index.settings",
    "BuildOptions": "odqa.index.options",
    "ColBERTSettings": "odqa.index.settings",
    "DenseSettings": "odqa.index.settings",
    "FORMAT_VERSION": "odqa.index.manifest",
    "Manifest": "odqa.index.manifest",
    "add_documents": "odqa.index.updates",
    "build_index": "odqa.index.builder",
    "compact_index": "odqa.index.updates",
    "delete_documents": "odqa.index.updates",
}

__all__ = [
    "FORMAT_VERSION",
    "BM25Settings",
    "BuildOptions",
    "ColBERTSettings",
    "DenseSettings",
    "Manifest",
    "add_documents",
    "build_index",
    "compact_index",
    "delete_documents",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'odqa.index' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
