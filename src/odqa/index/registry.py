"""The retriever kinds odqa knows, in the order an index lists (and a hybrid fuses) them.

One line a kind: its name, the class of its kind (``module:class``) and the class of its
settings. The settings class is read without importing the kind's engine, so that
``odqa index --help`` can offer every kind's options; a kind's own module is imported when
the kind is first asked for, so that a BM25-only build or search never loads torch,
transformers or faiss. A kind is checked when it is first asked for: a class that lacks a
verb of :mod:`odqa.index.kind` is refused, naming what it lacks.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any

from odqa.errors import OdqaError
from odqa.index.kind import KindBuilder, RetrieverKind, RowSearcher
from odqa.index.settings import KindSettings

KINDS: dict[str, tuple[str, str]] = {  # name: ("module:kind class", "module:settings class")
    "bm25": ("odqa.index.bm25:BM25Kind", "odqa.index.settings:BM25Settings"),
    "dense": ("odqa.index.dense:DenseKind", "odqa.index.settings:DenseSettings"),
    "colbert": ("odqa.index.colbert:ColBERTKind", "odqa.index.settings:ColBERTSettings"),
}


def kind_names() -> tuple[str, ...]:
    """The known kinds' names, in index order."""
    return tuple(KINDS)


def _known(name: str) -> tuple[str, str]:
    if name not in KINDS:
        raise OdqaError(f"retrievers must be among {kind_names()}, got {name!r}")
    return KINDS[name]


def _imported(path: str) -> Any:
    module, attribute = path.split(":")
    return getattr(importlib.import_module(module), attribute)


def settings_class(name: str) -> type[KindSettings]:
    """The settings class of kind ``name`` (its engine not imported)."""
    found = _imported(_known(name)[1])
    if not (isinstance(found, type) and issubclass(found, KindSettings)):
        raise OdqaError(f"kind {name!r}: {_known(name)[1]} is not a KindSettings dataclass")
    return found


def kind_named(name: str) -> RetrieverKind:
    """The kind called ``name`` (its module imported now, checked once); an error naming the
    known kinds, or what the kind lacks."""
    return _checked(name, *_known(name))()


@functools.cache
def _checked(name: str, kind_path: str, settings_path: str) -> type[RetrieverKind]:
    kind = _imported(kind_path)
    problems = missing_verbs(kind)
    if not problems and kind.name != name:
        problems = [f"its name is {kind.name!r}, registered as {name!r}"]
    if not problems and kind.settings is not settings_class(name):
        problems = [f"its settings are not {settings_path}"]
    if problems:
        raise OdqaError(f"retriever kind {name!r} ({kind_path}) " + "; ".join(problems))
    return kind


def missing_verbs(kind: Any) -> list[str]:
    """What ``kind`` lacks to be a kind: its base classes, attributes, verbs (each of the
    kind, its builder and its searcher), and the ``allowed`` argument of ``search``."""
    wanted = (
        (kind, RetrieverKind, "the kind"),
        (getattr(kind, "builder_class", None), KindBuilder, "its builder_class"),
        (getattr(kind, "searcher_class", None), RowSearcher, "its searcher_class"),
    )
    problems = []
    for cls, base, what in wanted:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            problems.append(f"{what} is not a subclass of odqa.index.kind.{base.__name__}")
            continue
        lacking = sorted(getattr(cls, "__abstractmethods__", ()))
        if lacking:
            problems.append(f"{what} lacks {', '.join(f'{verb}()' for verb in lacking)}")
    for attribute in ("name", "folder", "settings"):
        if not hasattr(kind, attribute):
            problems.append(f"the kind has no {attribute!r}")
    searcher = getattr(kind, "searcher_class", None)
    if (
        isinstance(searcher, type)
        and "allowed" not in inspect.signature(searcher.search).parameters
    ):
        problems.append("its searcher's search() takes no 'allowed' (a filter's rows)")
    return problems
