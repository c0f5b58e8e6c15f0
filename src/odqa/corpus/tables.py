"""Tables as corpora: parquet files (pyarrow) and saved Hugging Face ``datasets`` folders.

The schema is JSONL's: a row has ``id`` or ``_id``, ``text``, optional ``title`` and
``metadata`` (a struct), and every other column goes into the metadata; the checks and their
messages are JSONL's too, with the row (1-based) where JSONL names the line. Rows are read a
batch at a time (``iter_batches``; a datasets folder is memory-mapped Arrow), never whole.

Arrow values that JSON has no type for are stored as JSON can hold them: dates and times as
ISO 8601 text, decimals as numbers; binary values are refused, naming the column.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from odqa.corpus.records import Document
from odqa.corpus.schema import ID_KEYS, Row, fail, unique_documents
from odqa.errors import InputError, OdqaError
from odqa.extras import require

BATCH_ROWS = 1024
PARQUET_SUFFIXES = (".parquet", ".pq")
DATASET_FILES = ("dataset_info.json", "state.json")
DATASET_DICT_FILE = "dataset_dict.json"


def is_dataset_folder(path: Path) -> bool:
    """Whether ``path`` is a folder ``datasets.save_to_disk`` wrote (a dataset or splits)."""
    return path.is_dir() and (
        all((path / name).is_file() for name in DATASET_FILES)
        or (path / DATASET_DICT_FILE).is_file()
    )


def check_columns(columns: Sequence[str], path: Path) -> None:
    """A table needs a ``text`` column and an ``id`` or ``_id`` one."""
    listed = ", ".join(columns) or "none"
    if "text" not in columns:
        raise InputError(f"no 'text' column (columns: {listed})", path=path, field="text")
    if not any(key in columns for key in ID_KEYS):
        raise InputError(f"no 'id' or '_id' column (columns: {listed})", path=path, field="id")


def _json_value(value: Any, where: tuple[Path, Row], column: str) -> Any:
    """``value`` as JSON can hold it (see the module's text)."""
    if isinstance(value, dict):
        return {key: _json_value(item, where, column) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item, where, column) for item in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes | bytearray):
        raise fail("binary values cannot be stored; cast the column to text", where, column)
    return value


def _batches(batches: Iterator[Any], path: Path) -> Iterator[Any]:
    """``batches`` as they come; a read error partway (a damaged row group, a truncated Arrow
    file) is an :class:`InputError` naming the first row of the batch that failed."""
    first = 1
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise InputError(f"cannot read the table here ({exc})", path=path, row=first) from exc
        first += batch.num_rows
        yield batch


def _rows(batches: Iterator[Any], path: Path) -> Iterator[tuple[Row, dict[str, Any]]]:
    """``(row, record)`` for every row of Arrow record batches (or tables)."""
    number = 0
    for batch in _batches(iter(batches), path):
        for record in batch.to_pylist():
            number += 1
            where = (path, Row(number))
            yield Row(number), {key: _json_value(v, where, key) for key, v in record.items()}


def _parquet_file(path: Path):
    pq = require("pyarrow.parquet", "parquet", "reading parquet", package="pyarrow")
    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InputError(f"not a readable parquet file ({exc})", path=path) from exc


def read_parquet(path: str | Path) -> Iterator[Document]:
    """Stream the documents of a parquet file, a batch of rows at a time."""
    path = Path(path)
    table = _parquet_file(path)
    check_columns(table.schema_arrow.names, path)
    return unique_documents(_rows(table.iter_batches(batch_size=BATCH_ROWS), path), path)


def parquet_rows(path: str | Path) -> int | None:
    """The rows of a parquet file, from its footer (no data read); None if unreadable."""
    try:
        return _parquet_file(Path(path)).metadata.num_rows
    except OdqaError:  # unreadable, or its package is not installed
        return None


def load_dataset(path: str | Path):
    """The ``datasets.Dataset`` saved in ``path``; a folder of several splits is refused,
    naming them, and a folder of one split is that split."""
    path = Path(path)
    datasets = require("datasets", "datasets", "reading a datasets folder")
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # a damaged state.json fails anywhere inside datasets
        reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, LookupError | TypeError) else exc
        raise InputError(f"not a readable datasets folder ({reason})", path=path) from exc
    if isinstance(loaded, datasets.DatasetDict):
        splits = sorted(loaded)
        if len(splits) != 1:
            raise InputError(
                f"a datasets folder of several splits ({', '.join(splits)}); give one of "
                f"them, e.g. {path / splits[0]}",
                path=path,
            )
        loaded = loaded[splits[0]]
    return loaded


def read_dataset(path: str | Path) -> Iterator[Document]:
    """Stream the documents of a saved ``datasets`` folder, a batch of rows at a time."""
    path = Path(path)
    dataset = load_dataset(path)
    check_columns(dataset.column_names, path)
    batches = dataset.with_format("arrow").iter(batch_size=BATCH_ROWS)
    return unique_documents(_rows(batches, path), path)


def dataset_rows(path: str | Path) -> int | None:
    """The rows of a saved ``datasets`` folder (its Arrow files are memory-mapped, not read)."""
    try:
        return load_dataset(path).num_rows
    except OdqaError:  # unreadable, or its package is not installed
        return None
