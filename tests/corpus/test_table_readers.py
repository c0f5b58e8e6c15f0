"""Parquet files and saved ``datasets`` folders as corpora: JSONL's schema and checks, with
rows where JSONL has lines, read in batches; bad tables are errors naming file, row, field."""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import odqa
from odqa.cli import app
from odqa.corpus import Document, read_documents
from odqa.corpus import tables as tables_module
from odqa.corpus.readers import count_documents
from odqa.errors import InputError
from odqa.extras import MissingExtraError

ROWS = [
    {"id": "d1", "title": "Scurvy", "text": "Scurvy comes from a lack of vitamin C.",
     "metadata": {"year": 2020, "source": "pubmed"}},
    {"id": "d2", "title": None, "text": "Rickets comes from too little vitamin D.",
     "metadata": {"year": 2018, "source": "pmc"}},
    {"id": "d3", "title": "Beriberi", "text": "Beriberi follows a lack of thiamine.",
     "metadata": None},
]  # fmt: skip


def write_parquet(path: Path, rows: list[dict], **options) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path, **options)
    return path


def expected_documents() -> list[Document]:
    return [
        Document("d1", ROWS[0]["text"], "Scurvy", {"year": 2020, "source": "pubmed"}),
        Document("d2", ROWS[1]["text"], "", {"year": 2018, "source": "pmc"}),
        Document("d3", ROWS[2]["text"], "Beriberi", {}),
    ]


def test_parquet_reads_as_jsonl_does(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "corpus.parquet", ROWS)
    jsonl = tmp_path / "corpus.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    assert list(read_documents(path)) == expected_documents() == list(read_documents(jsonl))
    assert count_documents(path) == 3


def test_parquet_is_read_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"id": i, "text": f"text {i}", "lang": "en"} for i in range(2500)]
    path = write_parquet(tmp_path / "big.parquet", rows, row_group_size=500)
    sizes: list[int] = []
    original = tables_module._rows

    def counted(batches, where):
        for batch in batches:
            sizes.append(batch.num_rows)
            yield from original(iter([batch]), where)

    monkeypatch.setattr(tables_module, "_rows", counted)
    documents = read_documents(path)
    first = next(documents)
    assert first == Document("0", "text 0", "", {"lang": "en"})  # an int id reads as its text
    assert sizes == [tables_module.BATCH_ROWS]  # one batch read, not the file
    assert sum(1 for _ in documents) == 2499 and max(sizes) <= tables_module.BATCH_ROWS


def test_a_saved_dataset_reads_as_jsonl_does(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(folder))
    assert list(read_documents(folder)) == expected_documents()
    assert count_documents(folder) == 3
    splits = tmp_path / "splits"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(splits))
    assert list(read_documents(splits, "datasets")) == expected_documents()


def test_table_values_json_lacks_are_stored_as_text(tmp_path: Path) -> None:
    rows = [{"id": "a", "text": "t", "published": datetime.date(2020, 5, 1)}]
    path = write_parquet(tmp_path / "dates.parquet", rows)
    assert next(read_documents(path)).metadata == {"published": "2020-05-01"}


def error_of(path: Path, fmt: str = "auto") -> InputError:
    with pytest.raises(InputError) as caught:
        list(read_documents(path, fmt))
    return caught.value


def test_parquet_without_a_text_column(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "bad.parquet", [{"id": "a", "body": "x"}])
    error = error_of(path)
    assert (error.path, error.field) == (str(path), "text")
    assert "no 'text' column (columns: id, body)" in str(error)


def test_a_dataset_of_another_schema(tmp_path: Path) -> None:
    folder = tmp_path / "squad"
    datasets.Dataset.from_list([{"question": "q?", "context": "c"}]).save_to_disk(str(folder))
    error = error_of(folder)
    assert (error.path, error.field) == (str(folder), "text")
    assert "columns: question, context" in str(error)
    with_text = tmp_path / "no-ids"
    datasets.Dataset.from_list([{"text": "t"}]).save_to_disk(str(with_text))
    assert error_of(with_text).field == "id"


@pytest.mark.parametrize(
    ("rows", "row", "field", "message"),
    [
        ([{"id": "a", "text": "x"}, {"id": "b", "text": None}], 2, "text", "got null"),
        ([{"id": "a", "text": 5}], 1, "text", "must be a string, got an integer"),
        ([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], 2, "id", "first on row 1"),
        ([{"id": "a b", "text": "x"}], 1, "id", "contains a space"),
        ([{"_id": "a", "text": "x", "metadata": "m"}], 1, "metadata", "must be an object"),
        ([{"id": "a", "text": "x", "blob": b"\x00"}], 1, "blob", "binary values"),
    ],
)
def test_bad_rows_name_file_row_and_field(
    tmp_path: Path, rows: list[dict], row: int, field: str, message: str
) -> None:
    path = write_parquet(tmp_path / "rows.parquet", rows)
    error = error_of(path)
    assert (error.path, error.row, error.line, error.field) == (str(path), row, None, field)
    assert f"{path}: row {row}: field '{field}'" in str(error) and message in str(error)
    folder = tmp_path / "rows-ds"
    datasets.Dataset(pq.read_table(path)).save_to_disk(str(folder))
    error = error_of(folder)
    assert (error.path, error.row, error.field) == (str(folder), row, field)


def test_files_that_are_not_tables(tmp_path: Path) -> None:
    fake = tmp_path / "fake.parquet"
    fake.write_text("not parquet", encoding="utf-8")
    assert "not a readable parquet file" in str(error_of(fake))
    splits = tmp_path / "two"
    one = datasets.Dataset.from_list(ROWS)
    datasets.DatasetDict({"train": one, "test": one}).save_to_disk(str(splits))
    assert f"give one of them, e.g. {splits / 'test'}" in str(error_of(splits))


def damage_state(folder: Path, change) -> None:
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    (folder / "state.json").write_text(json.dumps(change(state)), encoding="utf-8")


@pytest.mark.parametrize(
    "damage",
    [
        lambda state: {},
        lambda state: {**state, "_data_files": "data-00000-of-00001.arrow"},
        lambda state: {**state, "_data_files": [{"filename": 7}]},
        lambda state: {**state, "_data_files": [{"filename": "missing.arrow"}]},
        lambda state: [],
    ],
    ids=["empty", "files-a-string", "filename-a-number", "file-missing", "a-list"],
)
def test_a_damaged_datasets_folder_is_one_line_naming_it(tmp_path: Path, damage) -> None:
    folder = tmp_path / "saved"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(folder))
    damage_state(folder, damage)
    error = error_of(folder)
    assert error.path == str(folder) and "not a readable datasets folder" in error.message
    assert count_documents(folder, "auto") is None  # counting for the bar says nothing
    result = CliRunner().invoke(app, ["index", str(folder), str(tmp_path / "idx")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and "not a readable datasets folder" in result.output


def test_a_read_error_partway_names_the_row(tmp_path: Path) -> None:
    rows = [{"id": f"d{i}", "text": f"passage {i} " * 10} for i in range(3 * 1000)]
    path = write_parquet(
        tmp_path / "damaged.parquet", rows, row_group_size=1000, compression="none"
    )
    pages = pq.ParquetFile(path).metadata.row_group(2).column(1).data_page_offset
    data = bytearray(path.read_bytes())
    data[pages : pages + 64] = b"\xff" * 64  # the third row group's text pages; footer intact
    path.write_bytes(bytes(data))
    read = read_documents(path)
    with pytest.raises(InputError) as caught:
        list(read)
    error = caught.value
    assert error.path == str(path)
    damaged = 2 * 1000  # rows before the damaged row group
    batch = tables_module.BATCH_ROWS
    assert error.row == damaged // batch * batch + 1  # the first row of the batch holding it
    assert "cannot read the table" in error.message


def test_a_missing_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_parquet(tmp_path / "corpus.parquet", ROWS)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import fails as if absent
    with pytest.raises(MissingExtraError, match=r"needs pyarrow.*pip install 'odqa\[parquet\]'"):
        list(read_documents(path))
    monkeypatch.setitem(sys.modules, "datasets", None)
    folder = tmp_path / "ds"
    (folder).mkdir()
    for name in tables_module.DATASET_FILES:
        (folder / name).write_text("{}", encoding="utf-8")
    with pytest.raises(MissingExtraError, match=r"pip install 'odqa\[datasets\]'"):
        list(read_documents(folder))


def test_odqa_index_takes_parquet_and_filters_its_metadata(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "corpus.parquet", ROWS)
    result = CliRunner().invoke(
        app, ["index", str(path), str(tmp_path / "idx"), "--retrievers", "bm25"]
    )
    assert result.exit_code == 0, result.output
    with odqa.Searcher(tmp_path / "idx") as searcher:
        hits = searcher.search(["vitamin lack"], 3, where={"year": {"gte": 2019}})[0]
    assert [hit.doc_id for hit in hits] == ["d1"]
