"""Settings files: the search settings (and reader k) a tuning run chose, as JSON.

``odqa tune`` writes one; ``search``, ``eval``, ``eval-qa``, ``ask`` and ``serve`` read it
with ``--settings``. The schema, format version 1::

    {
      "format": "odqa-settings",
      "format_version": 1,
      "odqa_version": "0.1.0",
      "search": {"retriever": "hybrid", "fusion": "rrf", "weights": [0.8, 0.3],
                 "ncells": null, "centroid_score_threshold": null, "ndocs": null},
      "reader_k": 3,
      "dev_query_ids": ["q1", "q2"],
      "tuning": {"objective": "ndcg@10", "value": 0.71, "...": "..."}
    }

``search`` holds any of :data:`SEARCH_KEYS`; ``reader_k`` (or null) the passages a reader
reads; ``dev_query_ids`` the queries the settings were tuned on, so that an evaluation on
any of them is refused (:func:`check_disjoint`); ``tuning`` is a free-form record of the run.
Every other key, a file of a newer format, or malformed JSON is an :class:`InputError`
naming the file and the key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from odqa._version import __version__
from odqa.errors import InputError
from odqa.fs import write_text
from odqa.retrieve.options import SearchOptions, search_options

FORMAT = "odqa-settings"
FORMAT_VERSION = 1
SEARCH_KEYS = ("retriever", "fusion", "weights", "ncells", "centroid_score_threshold", "ndocs")
"""The search settings a settings file may hold (the machine-independent ones)."""
PLAID_KEYS = ("ncells", "centroid_score_threshold", "ndocs")
TOP_KEYS = (
    "format",
    "format_version",
    "odqa_version",
    "search",
    "reader_k",
    "dev_query_ids",
    "tuning",
)
_EXAMPLES = 3


@dataclass(frozen=True)
class TunedSettings:
    """What a settings file holds: ``search`` (a subset of :data:`SEARCH_KEYS`), the
    reader's ``reader_k``, the ``dev_query_ids`` it was tuned on and the ``tuning`` record."""

    search: dict[str, Any] = field(default_factory=dict)
    reader_k: int | None = None
    dev_query_ids: tuple[str, ...] = ()
    tuning: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The file's content."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "odqa_version": __version__,
            "search": self.search,
            "reader_k": self.reader_k,
            "dev_query_ids": sorted(self.dev_query_ids),
            "tuning": self.tuning,
        }


def applied(settings: TunedSettings, options: SearchOptions | None = None) -> SearchOptions:
    """``options`` (default: the defaults) with the settings file's search settings over it."""
    search = dict(settings.search)
    plaid = {key: search.pop(key) for key in PLAID_KEYS if key in search}
    base = options or SearchOptions()
    if plaid:
        search["plaid"] = replace(base.plaid, **plaid)
    return search_options(base, search)


def write_settings(path: str | Path, settings: TunedSettings) -> None:
    """Write ``settings`` as a settings file, atomically."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(settings.as_json(), indent=2) + "\n")


def read_settings(path: str | Path) -> TunedSettings:
    """Read and check a settings file (see the module notes for what is refused)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise InputError(f"cannot read the settings file: {reason}", path=path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"not valid JSON ({error.msg})", path=path, line=error.lineno) from None
    if not isinstance(data, dict):
        raise InputError("a settings file holds one JSON object", path=path)
    _check_format(data, path)
    _check_keys(data, TOP_KEYS, path, "")
    search = data.get("search") or {}
    if not isinstance(search, dict):
        raise InputError("must be an object", path=path, field="search")
    _check_keys(search, SEARCH_KEYS, path, "search.")
    return TunedSettings(
        search={key: _search_value(key, value, path) for key, value in search.items()},
        reader_k=_reader_k(data.get("reader_k"), path),
        dev_query_ids=_ids(data.get("dev_query_ids") or [], path),
        tuning=data.get("tuning") or {},
        path=str(path),
    )


def check_disjoint(
    settings: TunedSettings, query_ids: Iterable[str], source: str | Path | None = None
) -> None:
    """Refuse an evaluation on queries the settings were tuned on: the figure would flatter."""
    shared = sorted(set(settings.dev_query_ids) & set(query_ids))
    if not shared:
        return
    examples = ", ".join(repr(qid) for qid in shared[:_EXAMPLES])
    more = f" and {len(shared) - _EXAMPLES} more" if len(shared) > _EXAMPLES else ""
    where = f" of {source}" if source is not None else ""
    raise InputError(
        f"{len(shared)} evaluation queries{where} were used to tune these settings "
        f"({examples}{more}); evaluate on queries kept out of tuning",
        path=settings.path,
        field="dev_query_ids",
    )


def _check_format(data: Mapping[str, Any], path: str | Path) -> None:
    if data.get("format") != FORMAT:
        raise InputError(f"not an odqa settings file (format must be {FORMAT!r})", path=path)
    version = data.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InputError("must be a positive integer", path=path, field="format_version")
    if version > FORMAT_VERSION:
        raise InputError(
            f"written by odqa {data.get('odqa_version', '?')} in settings format {version}; "
            f"this odqa ({__version__}) reads format {FORMAT_VERSION}: upgrade odqa",
            path=path,
            field="format_version",
        )


def _check_keys(data: Mapping[str, Any], known: tuple[str, ...], path: str | Path, prefix: str):
    for key in data:
        if key not in known:
            raise InputError(
                f"unknown key; known: {', '.join(known)}", path=path, field=f"{prefix}{key}"
            )


def _search_value(key: str, value: Any, path: str | Path) -> Any:
    """One search setting, type-checked (its range is checked by SearchOptions)."""
    if value is None:
        return None
    name = f"search.{key}"
    if key in ("retriever", "fusion"):
        if not isinstance(value, str):
            raise InputError("must be a string", path=path, field=name)
        return value
    if key == "weights":
        if not isinstance(value, list) or not all(_number(item) for item in value):
            raise InputError("must be a list of numbers", path=path, field=name)
        return [float(item) for item in value]
    if key == "centroid_score_threshold":
        if not _number(value):
            raise InputError("must be a number", path=path, field=name)
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError("must be a positive integer", path=path, field=name)
    return value


def _reader_k(value: Any, path: str | Path) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError("must be a positive integer or null", path=path, field="reader_k")
    return value


def _ids(value: Any, path: str | Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InputError("must be a list of query ids (strings)", path=path, field="dev_query_ids")
    return tuple(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
