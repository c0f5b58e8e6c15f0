"""The retriever kinds odqa knows, in the order an index lists (and a hybrid fuses) them.

Each kind's module is imported when the kind is first asked for, so that a BM25-only build
or search never loads torch, transformers or faiss.
"""

from __future__ import annotations

import importlib

from odqa.errors import OdqaError
from odqa.index.kind import RetrieverKind

KINDS: dict[str, str] = {  # name: "module:class"
    "bm25": "odqa.index.bm25:BM25Kind",
    "dense": "odqa.index.dense:DenseKind",
    "colbert": "odqa.index.colbert:ColBERTKind",
}


def kind_names() -> tuple[str, ...]:
    """The known kinds' names, in index order."""
    return tuple(KINDS)


def kind_named(name: str) -> RetrieverKind:
    """The kind called ``name`` (its module imported now); an error naming the known kinds
    otherwise."""
    if name not in KINDS:
        raise OdqaError(f"retrievers must be among {kind_names()}, got {name!r}")
    module, attribute = KINDS[name].split(":")
    return getattr(importlib.import_module(module), attribute)()
