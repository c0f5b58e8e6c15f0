"""The retriever kinds, imported and checked: a kind's own module is imported when the kind
is first asked for (the names and settings classes are :mod:`odqa.index.catalog`'s), and a
class that lacks a verb of :mod:`odqa.index.kind` is refused then, naming what it lacks.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from odqa.errors import OdqaError
from odqa.index.catalog import imported, known, settings_class
from odqa.index.kind import KindBuilder, RetrieverKind, RowSearcher


def kind_named(name: str) -> RetrieverKind:
    """The kind called ``name`` (its module imported now, checked once); an error naming the
    known kinds, or what the kind lacks."""
    return _checked(name, *known(name))()


@functools.cache
def _checked(name: str, kind_path: str, settings_path: str) -> type[RetrieverKind]:
    kind = imported(kind_path)
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
