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
    with pytest.raises(InputError, match=r"holds only booleans.*got 'True'"):
        kept(columns, {"y": "True"})  # the string is not the boolean, and says so


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"open": "yes"}, r"field 'where.open': the field holds only booleans, .*got 'yes'"),
        ({"open": ["yes", "no"]}, r"holds only booleans"),
        ({"place": True}, r"holds only strings.*got True; write \"true\" in quotes"),
        ({"place": 3}, r"holds only strings.*got 3"),
        ({"year": "2020"}, r"holds only numbers.*got '2020'"),
    ],
)
def test_a_value_of_a_type_the_field_never_holds_is_refused(
    tmp_path: Path, where: dict, message: str
) -> None:
    columns = written(
        tmp_path, [{"open": True, "place": "Paris", "year": 2020}, {"open": False, "year": 1}]
    )
    with pytest.raises(InputError, match=message):
        kept(columns, where)
    assert kept(columns, {"open": [True, "yes"]}) == [0]  # one of them can match: no error
    assert kept(columns, {"place": ["Paris", True]}) == [0]


def test_a_field_of_numbers_past_floats_range_says_so(tmp_path: Path) -> None:
    columns = written(tmp_path, [{"big": float("inf")}, {"big": 10**400}, {"big": float("nan")}])
    with pytest.raises(InputError, match=r"'where.big': .*no value filters can match.*not finite"):
        kept(columns, {"big": {"gte": 0}})


def test_nested_values_and_too_many_fields(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(metadata, "MAX_FIELDS", 2)
    columns = written(tmp_path, [{"tags": ["a"], "n": 1, "extra": 3}])
    with pytest.raises(InputError, match="arrays or objects"):
        kept(columns, {"tags": "a"})
    with pytest.raises(InputError, match="not kept as a column"):
        kept(columns, {"extra": 3})
    assert kept(columns, {"n": 1}) == [0]


@pytest.mark.parametrize(
    "damage",
    ['{"fields": {"x": {"file": "f0"}}}', '{"fields": {"x": 3}}', "{not json", '{"other": 1}'],
)
def test_info_on_a_damaged_field_description(tmp_path: Path, damage: str) -> None:
    written(tmp_path, [{"x": 1, "y": "a"}])
    assert metadata.field_summary([tmp_path]) == (
        "metadata fields for --where: x (numbers), y (strings)"
    )
    path = tmp_path / metadata.FOLDER / metadata.FIELDS
    path.write_text(damage, encoding="utf-8")
    summary = metadata.field_summary([tmp_path])
    assert summary is not None and f"{path} is damaged" in summary and "rebuild" in summary


def test_info_on_an_index_without_columns(tmp_path: Path) -> None:
    assert metadata.field_summary([tmp_path]) is None
