"""The retriever kinds odqa knows, in the order an index lists (and a hybrid fuses) them."""

from __future__ import annotations

from odqa.errors import OdqaError
from odqa.index.bm25 import BM25Kind
from odqa.index.colbert import ColBERTKind
from odqa.index.dense import DenseKind
from odqa.index.kind import RetrieverKind

KINDS: dict[str, RetrieverKind] = {
    kind.name: kind for kind in (BM25Kind(), DenseKind(), ColBERTKind())
}


def kind_names() -> tuple[str, ...]:
    """The known kinds' names, in index order."""
    return tuple(KINDS)


def kind_named(name: str) -> RetrieverKind:
    """The kind called ``name``; an error naming the known kinds otherwise."""
    if name not in KINDS:
        raise OdqaError(f"retrievers must be among {kind_names()}, got {name!r}")
    return KINDS[name]
