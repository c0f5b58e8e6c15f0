"""Metadata filters (``where``): the grammar, its command-line form, and the documents kept.

A filter maps metadata fields to conditions; a document is kept when it meets every one:

- a scalar (string, number, boolean): the field equals it (``{"year": 2020}``);
- a list of scalars: the field equals one of them (``{"source": ["pubmed", "pmc"]}``);
- an object of ``gte``, ``gt``, ``lte``, ``lt`` numbers: a numeric range
  (``{"year": {"gte": 2018, "lt": 2021}}``).

Numbers match numbers (2020 and 2020.0 are equal), strings and booleans match exactly; a
document without the field never matches. On the command line each ``--where`` is one term:
``FIELD=VALUE``, ``FIELD=V1,V2`` (one of), ``FIELD>=N``, ``FIELD>N``, ``FIELD<=N``,
``FIELD<N``; a value that reads as a JSON number is one (``007`` does not), ``true``/``false`` are booleans, a value
in double quotes is a string as written (``code="007"``, ``place="Paris, TX"``).

>>> parse_where_terms(["year>=2018", "year<2021", "source=pubmed,pmc"])
{'year': {'gte': 2018, 'lt': 2021}, 'source': ['pubmed', 'pmc']}
>>> parse_where({"year": {"gte": 2018}, "open": True})
(Condition(field='year', values=(), bounds=(('gte', 2018.0),)), Condition(field='open', values=(True,), bounds=()))
"""  # noqa: E501

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from odqa.corpus.textio import lone_surrogate, not_unicode
from odqa.errors import InputError
from odqa.index.metadata import (
    KEY,
    MAX_FIELDS,
    NOT_FINITE,
    NUMBER,
    MetadataColumns,
    as_float,
    is_number,
    value_key,
)

RANGES = {"gte": np.greater_equal, "gt": np.greater, "lte": np.less_equal, "lt": np.less}
OPERATORS = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt", "=": "eq"}
_TERM = re.compile(r"^([^=<>]+)(>=|<=|=|>|<)(.*)$", re.DOTALL)
_NUMBER = re.compile(r"^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$")
GRAMMAR = "FIELD=VALUE, FIELD=V1,V2, FIELD>=N, FIELD>N, FIELD<=N or FIELD<N"

Scalar = str | int | float | bool


@dataclass(frozen=True)
class Condition:
    """One field's condition: equal to one of ``values``, or within every ``bounds``."""

    field: str
    values: tuple[Scalar, ...] = ()
    bounds: tuple[tuple[str, float], ...] = ()


def _bad(name: str | None, message: str) -> InputError:
    return InputError(message, field="where" if name is None else f"where.{name}")


def _unicode(name: str | None, text: str) -> str:
    """``text``, if it can be written as UTF-8 (a filter's values are hashed as UTF-8)."""
    char = None if text.isascii() else lone_surrogate(text)
    if char is not None:
        raise _bad(name, not_unicode(char))
    return text


def _scalar(name: str, value: Any) -> Scalar:
    if isinstance(value, str):
        return _unicode(name, value)
    if isinstance(value, bool):
        return value
    if is_number(value):
        if as_float(value) is None:
            raise _bad(name, f"must be a finite number, got {value!r}")
        return value
    shown = "null" if value is None else type(value).__name__
    raise _bad(name, f"values must be strings, numbers or booleans, got {shown}")


def _condition(name: Any, value: Any) -> Condition:
    if not isinstance(name, str) or not name:
        raise _bad(None, f"field names must be non-empty strings, got {name!r}")
    _unicode(None, name)
    if isinstance(value, Mapping):
        unknown = sorted(str(key) for key in value if key not in RANGES)
        if unknown or not value:
            found = f"got {unknown}" if unknown else "got an empty object"
            raise _bad(name, f"a range takes gte, gt, lte and/or lt, {found}")
        bounds = []
        for op, bound in value.items():
            number = as_float(bound) if is_number(bound) else None
            if number is None:
                raise _bad(name, f"range bound {op!r} must be a finite number, got {bound!r}")
            bounds.append((op, number))
        return Condition(name, bounds=tuple(sorted(bounds)))
    if isinstance(value, list | tuple):
        if not value:
            raise _bad(name, "an empty list matches nothing; give at least one value")
        return Condition(name, values=tuple(_scalar(name, item) for item in value))
    return Condition(name, values=(_scalar(name, value),))


def parse_where(where: Mapping[str, object] | None) -> tuple[Condition, ...]:
    """The conditions of a ``where`` filter (see the module's text); malformed ones are an
    :class:`InputError` naming the field. None or ``{}``: no conditions."""
    if where is None:
        return ()
    if not isinstance(where, Mapping):
        raise _bad(None, f"must be an object of field: condition, got {type(where).__name__}")
    return tuple(_condition(name, value) for name, value in where.items())


def where_key(conditions: Sequence[Condition]) -> str:
    """A canonical text of ``conditions``: equal filters, equal keys."""
    parts = [[c.field, [[type(v).__name__, v] for v in c.values], c.bounds] for c in conditions]
    return json.dumps(sorted(parts, key=lambda part: part[0]))


def _term_value(term: str, text: str) -> Scalar:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    if not text:
        raise InputError(f"--where {term!r}: a value is missing")
    if text in ("true", "false"):
        return text == "true"
    if _NUMBER.match(text):
        number = float(text) if any(c in text for c in ".eE") else int(text)
        if as_float(number) is None:
            raise InputError(f"--where {term!r}: {text} is out of range")
        return number
    return text


def _utf8_term(term: str) -> None:
    """Refuse a term with bytes that are not UTF-8 (a command line's undecodable bytes come
    as lone surrogates), naming the first."""
    char = None if term.isascii() else lone_surrogate(term)
    if char is None:
        return
    try:  # the bytes as given on the command line, undecodable ones escaped
        shown = os.fsencode(term).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no command line gives
        shown = term.encode("utf-8", "backslashreplace").decode("utf-8")
    byte = f"byte 0x{ord(char) - 0xDC00:02x}" if 0xDC80 <= ord(char) <= 0xDCFF else repr(char)
    raise InputError(
        f"--where '{shown}': not valid UTF-8 ({byte} at character {term.index(char) + 1})"
    )


def parse_where_terms(terms: Sequence[str]) -> dict[str, Any]:
    """``--where`` terms (``year>=2018``, ``source=pubmed,pmc``) as a ``where`` object;
    ranges on one field merge, anything else given twice for a field is an error."""
    where: dict[str, Any] = {}
    for term in terms:
        _utf8_term(term)
        match = _TERM.match(term)
        if match is None or not match.group(1).strip():
            raise InputError(f"--where {term!r}: expected {GRAMMAR}")
        name, op = match.group(1).strip(), OPERATORS[match.group(2)]
        raw = match.group(3).strip()
        if op == "eq":
            quoted = len(raw) >= 2 and raw[0] == raw[-1] == '"'
            items = [raw] if quoted else raw.split(",")
            values = [_term_value(term, item) for item in items]
            if name in where:
                raise InputError(f"--where {term!r}: the field has a condition already")
            where[name] = values[0] if len(values) == 1 else values
            continue
        bound = _term_value(term, raw)
        if not is_number(bound):
            raise InputError(f"--where {term!r}: {match.group(2)} takes a number, got {raw!r}")
        ranges = where.setdefault(name, {})
        if not isinstance(ranges, dict) or op in ranges:
            raise InputError(f"--where {term!r}: the field has a condition like it already")
        ranges[op] = bound
    return where


def _known(columns: MetadataColumns, name: str) -> None:
    if name in columns.fields:
        return
    fields = ", ".join(sorted(columns.fields)) or "none"
    if name in columns.dropped:
        raise _bad(name, f"not kept as a column: an index keeps its first {MAX_FIELDS} fields")
    raise _bad(name, f"no document of the index has this field; its fields: {fields}")


def _held(info: dict[str, Any]) -> list[str]:
    """The types of value a field holds, in words; keys of an index that did not note which
    (before odqa told strings from booleans) as "strings or booleans"."""
    held = ["numbers"] if info.get(NUMBER) else []
    if info.get(KEY):
        told = [name for flag, name in (("str", "strings"), ("bool", "booleans")) if info.get(flag)]
        held += told or ["strings or booleans"]
    return held


def _shown(value: Scalar) -> str:
    """A filter value as the refusal quotes it, with how to write the text if a boolean."""
    if isinstance(value, bool):
        return f'{value!r}; write "{str(value).lower()}" in quotes for the text'
    return repr(value)


def _check_types(name: str, info: dict[str, Any], values: Sequence[Scalar]) -> None:
    """Refuse equality values none of which is of a type the field holds."""
    held = _held(info)
    if "strings or booleans" in held:
        fits = {"numbers": is_number, "strings or booleans": lambda v: not is_number(v)}
    else:
        fits = {
            "numbers": is_number,
            "strings": lambda v: isinstance(v, str),
            "booleans": lambda v: isinstance(v, bool),
        }
    if any(fits[kind](value) for kind in held for value in values):
        return
    given = ", ".join(_shown(value) for value in values[:3])
    raise _bad(
        name,
        f"the field holds only {' and '.join(held)}, and none of the values given is one: got "
        f"{given}",
    )


def _matches(columns: MetadataColumns, condition: Condition) -> np.ndarray:
    name = condition.field
    kinds, info = columns.kinds(name), columns.fields[name]
    if not kinds:
        if info.get(NOT_FINITE):
            raise _bad(
                name,
                "the field holds no value filters can match: its numbers are not finite "
                "(NaN, infinities, or past a float's range such as 1e400)",
            )
        raise _bad(name, "the field holds only arrays or objects, which filters cannot match")
    if condition.bounds:
        if NUMBER not in kinds:
            raise _bad(name, f"a range needs numbers, and the field holds only {_held(info)[0]}")
        numbers = columns.column(name, NUMBER)
        kept = np.ones(columns.documents, bool)
        for op, bound in condition.bounds:
            kept &= RANGES[op](numbers, bound)
        return kept
    _check_types(name, info, condition.values)
    numbers = [float(v) for v in condition.values if is_number(v)]
    keys = [value_key(v) for v in condition.values if not is_number(v)]
    kept = np.zeros(columns.documents, bool)
    if numbers and NUMBER in kinds:
        kept |= np.isin(columns.column(name, NUMBER), numbers)
    if keys and KEY in kinds:
        kept |= np.isin(columns.column(name, KEY), keys)
    return kept


def document_mask(columns: MetadataColumns, conditions: Sequence[Condition]) -> np.ndarray:
    """Per document number: whether it meets every condition."""
    for condition in conditions:
        _known(columns, condition.field)
    kept = np.ones(columns.documents, bool)
    for condition in conditions:
        kept &= _matches(columns, condition)
    return kept
