"""The metadata column store: kinds per field, fields first seen late, values not kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from odqa.corpus import Document
from odqa.errors import InputError
from odqa.index import metadata
from odqa.index.filters import document_mask, parse_where
from odqa.index.metadata import MetadataColumns, MetadataWriter


def written(folder: Path, *batches: list[dict]) -> MetadataColumns:
    writer = MetadataWriter(folder)
    count = 0
    for batch in batches:
        writer.add([Document(f"d{count + i}", "t", "", meta) for i, meta in enumerate(batch)])
        count += len(batch)
    writer.close()
    return MetadataColumns(folder, count)


def kept(columns: MetadataColumns, where: dict) -> list[int]:
    return np.flatnonzero(document_mask(columns, parse_where(where))).tolist()


def test_fields_first_seen_late_and_mixed_kinds(tmp_path: Path) -> None:
    columns = written(
        tmp_path,
        [{"x": 1}, {"x": 10**400, "y": float("nan")}, {"x": float("inf"), "y": True}],
        [{"x": "s", "late": 2.5}, {"x": None, "late": -1}],
    )
    assert columns.kinds("x") == ("num", "key") and columns.kinds("late") == ("num",)
    assert kept(columns, {"x": [1, "s"]}) == [0, 3]  # a huge int, inf and null: no value
    assert kept(columns, {"late": {"lt": 0}}) == [4]
    assert kept(columns, {"y": True}) == [2]
    assert kept(columns, {"y": "True"}) == []  # the string is not the boolean


def test_nested_values_and_too_many_fields(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(metadata, "MAX_FIELDS", 2)
    columns = written(tmp_path, [{"tags": ["a"], "n": 1, "extra": 3}])
    with pytest.raises(InputError, match="arrays or objects"):
        kept(columns, {"tags": "a"})
    with pytest.raises(InputError, match="not kept as a column"):
        kept(columns, {"extra": 3})
    assert kept(columns, {"n": 1}) == [0]
