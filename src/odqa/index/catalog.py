"""The retriever kinds odqa knows, in the order an index lists (and a hybrid fuses) them.

One line a kind: its name, the class of its kind (``module:class``) and the class of its
settings. Nothing here imports a kind's engine: the settings class is read on its own, so that
``odqa index --help`` can offer every kind's options and a BM25-only build or search never
loads torch, transformers or faiss. :mod:`odqa.index.registry` imports and checks the kinds.
"""

from __future__ import annotations

import importlib
from typing import Any

from odqa.errors import OdqaError
from odqa.index.settings import KindSettings

KINDS: dict[str, tuple[str, str]] = {  # name: ("module:kind class", "module:settings class")
    "bm25": ("odqa.index.bm25:BM25Kind", "odqa.index.settings:BM25Settings"),
    "dense": ("odqa.index.dense:DenseKind", "odqa.index.settings:DenseSettings"),
    "colbert": ("odqa.index.colbert:ColBERTKind", "odqa.index.settings:ColBERTSettings"),
}


def kind_names() -> tuple[str, ...]:
    """The known kinds' names, in index order."""
    return tuple(KINDS)


def known(name: str) -> tuple[str, str]:
    """Kind ``name``'s kind and settings class paths; an error naming the known kinds."""
    if name not in KINDS:
        raise OdqaError(f"retrievers must be among {kind_names()}, got {name!r}")
    return KINDS[name]


def imported(path: str) -> Any:
    """The attribute a ``module:attribute`` path names (its module imported now)."""
    module, attribute = path.split(":")
    return getattr(importlib.import_module(module), attribute)


def settings_class(name: str) -> type[KindSettings]:
    """The settings class of kind ``name`` (its engine not imported)."""
    found = imported(known(name)[1])
    if not (isinstance(found, type) and issubclass(found, KindSettings)):
        raise OdqaError(f"kind {name!r}: {known(name)[1]} is not a KindSettings dataclass")
    return found
