"""Hostile inputs to the readers and to ``odqa index`` / ``odqa eval``: each gets a clean result.

Clean means one of two things. Either the documented reading (TSV has no quoting, a JSON
number id keeps its text, a byte-order mark is dropped, ...), or a refusal: an InputError
located at the file, line and field, which the CLI prints as one ``error:`` line and exit code
2, with no traceback and no index directory (nor staging folder) left behind.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from helpers import listing
from odqa.cli import app
from odqa.corpus import read_documents, read_qrels, read_queries
from odqa.errors import InputError

runner = CliRunner()
JSONL_DOC = '{"id": "d1", "text": "Scurvy is caused by a lack of vitamin C."}\n'


def odqa(*args: object):
    return runner.invoke(app, [str(arg) for arg in args])


def put(folder: Path, name: str, content: str | bytes) -> Path:
    """``content`` written to ``folder/name`` (text as UTF-8; ``.gz`` names compressed)."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def located(call: Callable[[], Any], path: Path, line: int | None, field: str | None) -> str:
    """Run ``call``; it must raise an InputError at path/line/field. Returns the message."""
    with pytest.raises(InputError) as caught:
        call()
    error = caught.value
    assert (error.path, error.line, error.field) == (str(path), line, field), str(error)
    return error.message


def refused(result, path: Path, line: int | None, field: str | None, says: str) -> str:
    """``result`` of the CLI is a clean refusal naming path[:line][: field 'x']; its line."""
    output = result.output
    assert result.exit_code == 2, output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output
    errors = [text for text in output.splitlines() if text.startswith("error: ")]
    assert len(errors) == 1, output
    where = str(path) if line is None else f"{path}:{line}"
    prefix = f"error: {where}: " + ("" if field is None else f"field '{field}': ")
    assert errors[0].startswith(prefix), errors[0]
    assert says in errors[0], errors[0]
    return errors[0]


def index(corpus: Path, tiny_model: Path, *extra: object):
    """``odqa index CORPUS <folder>/idx --retrievers bm25`` with the tiny model."""
    target = corpus.parent / "idx"
    return odqa("index", corpus, target, "--retrievers", "bm25", "--model", tiny_model, *extra)


def nothing_left(folder: Path, *inputs: str) -> None:
    """No index and no staging folder beside the inputs (writer locks aside)."""
    assert not (folder / "idx").exists()
    assert listing(folder) == sorted(inputs)


# --- TSV: no quoting --------------------------------------------------------------------------

REPRO = 'id\ttitle\ttext\nd1\tT\tone\nd2\tT\t"unclosed\nd3\tT\tthree"\nd4\tT\tfour\n'


def test_tsv_unbalanced_quote_is_a_character_every_line_a_row(tmp_path: Path) -> None:
    path = put(tmp_path, "q.tsv", REPRO)
    docs = list(read_documents(path))
    assert [(doc.id, doc.text) for doc in docs] == [
        ("d1", "one"),
        ("d2", '"unclosed'),
        ("d3", 'three"'),
        ("d4", "four"),
    ]


def test_tsv_quote_open_to_the_end_of_the_file(tmp_path: Path) -> None:
    path = put(tmp_path, "open.tsv", 'id\ttext\na\t"never closed\nb\tsecond\nc\tthird\n')
    assert [doc.id for doc in read_documents(path)] == ["a", "b", "c"]


def test_cli_index_of_the_issue_repro_gives_four_documents(tmp_path: Path, tiny_model) -> None:
    path = put(tmp_path, "q.tsv", REPRO)
    result = index(path, tiny_model)
    assert result.exit_code == 0, result.output
    assert "documents: 4 " in result.output


def test_tsv_too_few_fields(tmp_path: Path, tiny_model: Path) -> None:
    path = put(tmp_path, "few.tsv", "id\ttitle\ttext\nd1\tT\tone\nd2\tT\n")
    refused(index(path, tiny_model), path, 3, "text", "expected 3 columns")
    nothing_left(tmp_path, "few.tsv")


def test_tsv_a_tab_inside_the_text_is_one_field_too_many(tmp_path: Path) -> None:
    path = put(tmp_path, "many.tsv", "id\ttext\nd1\tone\ttwo\n")
    assert "found 3" in located(lambda: list(read_documents(path)), path, 2, "column 3")


def test_tsv_bad_quotes_in_queries_and_qrels_are_characters(tmp_path: Path) -> None:
    queries = put(tmp_path, "queries.tsv", 'q1\t"what\nq2\tis"\n')
    assert [(q.id, q.text) for q in read_queries(queries)] == [("q1", '"what'), ("q2", 'is"')]
    qrels = put(tmp_path, "qrels.tsv", 'query-id\tcorpus-id\tscore\nq1\t"d1\t1\n')
    assert read_qrels(qrels) == {"q1": {'"d1': 1}}


def test_crlf_line_endings_are_not_text(tmp_path: Path) -> None:
    tsv = put(tmp_path, "crlf.tsv", "id\ttext\r\nd1\tone\r\nd2\ttwo\r\n")
    assert [(doc.id, doc.text) for doc in read_documents(tsv)] == [("d1", "one"), ("d2", "two")]
    csv_path = put(tmp_path, "crlf.csv", 'id,text\r\nd1,"one\r\nmore"\r\nd2,two\r\n')
    assert [doc.text for doc in read_documents(csv_path)] == ["one\r\nmore", "two"]


# --- CSV: RFC 4180 quoting, refused where it cannot be read as rows ---------------------------

CSV_REPRO = REPRO.replace("\t", ",")


def test_csv_quoted_field_closed_later_is_rfc_4180(tmp_path: Path) -> None:
    """The repro as CSV: the quote opened on line 3 closes on line 4, so by RFC 4180 d2's text
    spans two lines (three rows); that is the documented reading of CSV."""
    path = put(tmp_path, "q.csv", CSV_REPRO)
    docs = list(read_documents(path))
    assert [(doc.id, doc.text) for doc in docs] == [
        ("d1", "one"),
        ("d2", "unclosed\nd3,T,three"),
        ("d4", "four"),
    ]


def test_csv_quote_left_open_names_the_line_it_began(tmp_path: Path, tiny_model: Path) -> None:
    path = put(tmp_path, "q.csv", CSV_REPRO.replace('three"', "three"))
    line = refused(index(path, tiny_model), path, 3, None, "never closed")
    assert "the end of the file" in line
    nothing_left(tmp_path, "q.csv")


def test_csv_quote_closing_mid_field_names_both_lines(tmp_path: Path) -> None:
    text = 'id,title,text\nd1,T,one\nd2,T,"unclosed\nd3,T,"three"\nd4,T,four\n'
    path = put(tmp_path, "q.csv", text)
    message = located(lambda: list(read_documents(path)), path, 4, None)
    assert "text after the closing quote of a quoted field opened on line 3" in message


def test_csv_multiline_row_with_a_wrong_field_count(tmp_path: Path) -> None:
    path = put(tmp_path, "q.csv", 'id,title,text\nd1,T,"two\nlines",extra\nd2,T,x\n')
    message = located(lambda: list(read_documents(path)), path, 2, "column 4")
    assert "spans lines 2-3" in message


def test_csv_carriage_return_inside_a_row(tmp_path: Path) -> None:
    path = put(tmp_path, "cr.csv", "id,text\nd1,one\rtwo\n")
    assert "carriage return" in located(lambda: list(read_documents(path)), path, 2, None)


def test_csv_with_only_a_header_holds_no_documents(tmp_path: Path, tiny_model: Path) -> None:
    path = put(tmp_path, "header.csv", "id,title,text\n")
    refused(index(path, tiny_model), path, None, None, "holds no documents")
    nothing_left(tmp_path, "header.csv")


# --- bytes: BOMs, NUL, invalid UTF-8, UTF-16 --------------------------------------------------


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    csv_path = put(tmp_path, "bom.csv", "\ufeffid,text\nd1,one\n")
    assert [doc.id for doc in read_documents(csv_path)] == ["d1"]
    jsonl_path = put(tmp_path, "bom.jsonl.gz", "\ufeff" + JSONL_DOC)
    assert [doc.id for doc in read_documents(jsonl_path)] == ["d1"]


def test_utf16_file_is_refused_at_its_first_byte(tmp_path: Path, tiny_model: Path) -> None:
    path = put(tmp_path, "wide.csv", "id,text\nd1,one\n".encode("utf-16"))
    refused(index(path, tiny_model), path, 1, None, "not valid UTF-8 (byte 0xff at column 1)")
    nothing_left(tmp_path, "wide.csv")


def test_nul_byte_is_refused_with_its_column(tmp_path: Path, tiny_model: Path) -> None:
    path = put(tmp_path, "nul.tsv", b"id\ttext\nd1\tone\nd2\ttw\x00o\n")
    refused(index(path, tiny_model), path, 3, None, "a NUL byte at column 6")
    nothing_left(tmp_path, "nul.tsv")


def test_invalid_utf8_mid_file(tmp_path: Path, tiny_model: Path) -> None:
    path = put(tmp_path, "bad.jsonl", JSONL_DOC.encode() + b'{"id": "d2", "text": "\xc3("}\n')
    refused(index(path, tiny_model), path, 2, None, "not valid UTF-8 (byte 0xc3")
    nothing_left(tmp_path, "bad.jsonl")


def test_truncated_gzip(tmp_path: Path, tiny_model: Path) -> None:
    lines = "".join(json.dumps({"id": f"d{n}", "text": "x"}) + "\n" for n in range(2000))
    path = put(tmp_path, "cut.jsonl", gzip.compress(lines.encode())[:-200])
    refused(index(path, tiny_model), path, None, None, "cannot read the file after line")
    nothing_left(tmp_path, "cut.jsonl")


# --- ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [("1e400", "1e400"), ("1.50", "1.50"), ("-0", "-0"), ("7", "7"), ("1E5", "1E5")],
)
def test_a_number_id_keeps_its_text(tmp_path: Path, written: str, expected: str) -> None:
    path = put(tmp_path, "docs.jsonl", f'{{"id": {written}, "text": "x", "n": {written}}}\n')
    [doc] = read_documents(path)
    assert doc.id == expected
    assert doc.metadata["n"] == json.loads(written)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_id_is_refused(tmp_path: Path, constant: str) -> None:
    path = put(tmp_path, "queries.jsonl", f'{{"id": "a", "text": "x"}}\n{{"_id": {constant}}}\n')
    message = located(lambda: read_queries(path), path, 2, "_id")
    assert message == f"must be a finite number, got {constant}"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("d 1", "contains a space"),
        ("d\t1", "contains a tab"),
        ("d\n1", "contains a line break"),
        ("d1 ", "contains a space"),
        ("d\u00a01", "contains whitespace ('\\xa0')"),
        ("d\u00001", "contains a NUL character"),
        ("   ", "empty id"),
    ],
)
def test_an_id_a_trec_run_cannot_hold_is_refused_by_index(
    tmp_path: Path, tiny_model: Path, value: str, says: str
) -> None:
    path = put(tmp_path, "docs.jsonl", JSONL_DOC + json.dumps({"id": value, "text": "x"}) + "\n")
    refused(index(path, tiny_model), path, 2, "id", says)
    nothing_left(tmp_path, "docs.jsonl")


def test_whitespace_ids_in_csv_tsv_queries_qrels_squad(tmp_path: Path) -> None:
    csv_path = put(tmp_path, "docs.csv", "title,id,text\nT, d1,one\n")
    assert "contains a space" in located(lambda: list(read_documents(csv_path)), csv_path, 2, "id")
    queries = put(tmp_path, "queries.tsv", "q1\tfine\nq 2\tspaced\n")
    assert "contains a space" in located(lambda: read_queries(queries), queries, 2, "id")
    beir = put(tmp_path, "qrels.tsv", "query-id\tcorpus-id\tscore\nq1\td 1\t1\n")
    assert "contains a space" in located(lambda: read_qrels(beir), beir, 2, "corpus-id")
    trec = put(tmp_path, "qrels.txt", "q1\t0\td1\t1\nq\u20032\t0\td1\t1\n")
    assert "contains whitespace" in located(lambda: read_qrels(trec), trec, 2, "query-id")
    qa = {"id": "q 1", "question": "why?", "answers": []}
    squad = {"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": [qa]}]}]}
    squad_path = put(tmp_path, "squad.json", json.dumps(squad))
    field = "data[0].paragraphs[0].qas[0].id"
    assert "contains a space" in located(lambda: read_queries(squad_path), squad_path, None, field)


def test_duplicate_ids(tmp_path: Path, tiny_model: Path) -> None:
    path = put(tmp_path, "dup.jsonl", JSONL_DOC + '{"id": "d2", "text": "y"}\n' + JSONL_DOC)
    refused(index(path, tiny_model), path, 3, "id", "duplicate id 'd1' (first on line 1)")
    nothing_left(tmp_path, "dup.jsonl")
    tsv = put(tmp_path, "dup.tsv", "id\ttext\nd1\tone\nd1\tagain\n")
    assert "first on line 2" in located(lambda: list(read_documents(tsv)), tsv, 3, "id")


def test_a_huge_duplicate_id_is_shown_cut(tmp_path: Path) -> None:
    huge = "x" * 1_000_000
    path = put(tmp_path, "dup.jsonl", 2 * (json.dumps({"id": huge, "text": "t"}) + "\n"))
    message = located(lambda: list(read_documents(path)), path, 2, "id")
    assert len(message) < 200 and "(1000000 characters)" in message


# --- JSON shapes ----------------------------------------------------------------------------------


def test_deeply_nested_jsonl_line(tmp_path: Path, tiny_model: Path) -> None:
    path = put(tmp_path, "deep.jsonl", JSONL_DOC + "[" * 200_000 + "]" * 200_000 + "\n")
    refused(index(path, tiny_model), path, 2, None, "nested too deeply")
    nothing_left(tmp_path, "deep.jsonl")


def test_metadata_nested_past_the_limit_names_its_field(tmp_path: Path) -> None:
    record = {"id": "d1", "text": "x", "tree": json.loads("[" * 150 + "]" * 150)}
    path = put(tmp_path, "deep.jsonl", json.dumps(record) + "\n")
    field = "tree" + "[0]" * 99  # the 101st array: the object, "tree", 99 more
    assert "nested deeper than 100" in located(lambda: list(read_documents(path)), path, 1, field)


def test_deeply_nested_whole_json_file(tmp_path: Path) -> None:
    path = put(tmp_path, "deep.json", '{"data": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "nested too deeply" in located(lambda: list(read_documents(path)), path, None, None)


@pytest.mark.parametrize(
    ("record", "field", "says"),
    [
        ('{"id": "d2", "text": 3}', "text", "must be a string, got an integer"),
        ('{"id": "d2", "text": ["a"]}', "text", "must be a string, got an array"),
        ('{"id": "d2", "text": "x", "title": {"t": 1}}', "title", "must be a string"),
        ('{"id": {"x": 1}, "text": "x"}', "id", "must be a string or a number"),
        ('{"id": true, "text": "x"}', "id", "must be a string or a number, got a boolean"),
        ('{"id": "d2", "text": "vitamin \\ud800"}', "text", "lone surrogate \\ud800"),
        ('{"id": "d2", "text": "x", "m": {"k": ["\\udc00"]}}', "m.k[0]", "lone surrogate"),
    ],
)
def test_non_string_and_non_unicode_fields(
    tmp_path: Path, tiny_model: Path, record: str, field: str, says: str
) -> None:
    path = put(tmp_path, "docs.jsonl", JSONL_DOC + record + "\n")
    refused(index(path, tiny_model), path, 2, field, says)
    nothing_left(tmp_path, "docs.jsonl")


def test_a_valid_surrogate_pair_is_one_character(tmp_path: Path) -> None:
    path = put(tmp_path, "docs.jsonl", '{"id": "d1", "text": "smile \\ud83d\\ude00"}\n')
    assert [doc.text for doc in read_documents(path)] == ["smile \U0001f600"]


def test_a_line_that_is_not_an_object_or_an_endless_number(tmp_path: Path) -> None:
    path = put(tmp_path, "docs.jsonl", JSONL_DOC + '["d2", "text"]\n')
    assert "got an array" in located(lambda: list(read_documents(path)), path, 2, None)
    long = put(tmp_path, "long.jsonl", '{"id": "d1", "text": "x", "n": ' + "9" * 5000 + "}\n")
    assert "too many digits" in located(lambda: list(read_documents(long)), long, 1, None)


def test_a_huge_line(tmp_path: Path) -> None:
    text = "word " * 4_000_000  # 20 MB on one line
    path = put(tmp_path, "huge.tsv", f"id\ttext\nd1\t{text}\n")
    [doc] = read_documents(path)
    assert len(doc.text) == len(text)
    garbage = put(tmp_path, "huge.jsonl", "x" * 20_000_000 + "\n")
    message = located(lambda: list(read_documents(garbage)), garbage, 1, None)
    assert len(message) < 200


# --- paths: a folder where a file is expected, a file where a folder is -----------------------


def test_a_folder_given_as_a_jsonl_file(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "corpus.jsonl"
    put(folder, "notes.pdf", "not text")
    refused(index(folder, tiny_model, "--format", "jsonl"), folder, None, None, "is a folder")
    nothing_left(tmp_path, "corpus.jsonl")
    refused(index(folder, tiny_model), folder, None, None, "cannot tell the format")
    nothing_left(tmp_path, "corpus.jsonl")


def test_a_file_given_as_a_text_folder(tmp_path: Path, tiny_model: Path) -> None:
    path = put(tmp_path, "notes.txt", "just one file")
    refused(index(path, tiny_model, "--format", "textdir"), path, None, None, "expected a folder")
    nothing_left(tmp_path, "notes.txt")


def test_empty_corpus_file(tmp_path: Path, tiny_model: Path) -> None:
    path = put(tmp_path, "empty.jsonl", "")
    refused(index(path, tiny_model), path, None, None, "holds no documents")
    nothing_left(tmp_path, "empty.jsonl")


# --- odqa eval ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eval_index(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    folder = tmp_path_factory.mktemp("eval-index")
    docs = [
        {"id": "d1", "text": "Scurvy is caused by a lack of vitamin C."},
        {"id": "d2", "text": "Rickets comes from too little vitamin D."},
        {"id": "1e400", "text": "Beriberi follows a deficiency of thiamine."},
    ]
    corpus = put(folder, "corpus.jsonl", "".join(json.dumps(doc) + "\n" for doc in docs))
    result = index(corpus, tiny_model, "--language", "en")
    assert result.exit_code == 0, result.output
    return folder / "idx"


def good_qrels(folder: Path) -> Path:
    return put(folder, "qrels.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\t1e400\t1\n")


@pytest.mark.parametrize(
    ("content", "line", "field", "says"),
    [
        ("", None, None, "holds no queries"),
        ("\n  \n\n", None, None, "holds no queries"),
        ('{"id": "q1", "text": "scurvy"}\n{"id": "q 2", "text": "x"}\n', 2, "id", "a space"),
        ('{"id": NaN, "text": "scurvy"}\n', 1, "id", "must be a finite number, got NaN"),
        ('{"id": "q1", "text": "  "}\n', 1, "text", "empty query text"),
        ('{"id": "q1", "text": "x"}\n{"id": "q1", "text": "y"}\n', 2, "id", "duplicate id"),
    ],
)
def test_eval_refuses_bad_queries(
    eval_index: Path, tmp_path: Path, content: str, line: int | None, field: str | None, says: str
) -> None:
    queries = put(tmp_path, "queries.jsonl", content)
    result = odqa("eval", eval_index, "--queries", queries, "--qrels", good_qrels(tmp_path))
    refused(result, queries, line, field, says)


def test_eval_refuses_empty_and_bad_qrels(eval_index: Path, tmp_path: Path) -> None:
    queries = put(tmp_path, "queries.jsonl", '{"id": "q1", "text": "scurvy"}\n')
    empty = put(tmp_path, "empty.tsv", "query-id\tcorpus-id\tscore\n")
    result = odqa("eval", eval_index, "--queries", queries, "--qrels", empty)
    refused(result, empty, None, None, "holds no judgements")
    spaced = put(tmp_path, "spaced.tsv", "q1\td 1\t1\n")
    result = odqa("eval", eval_index, "--queries", queries, "--qrels", spaced)
    refused(result, spaced, 1, "corpus-id", "contains a space")


def test_eval_with_a_folder_as_the_run_file(eval_index: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run.trec"
    folder.mkdir()
    result = odqa("eval", "--run", folder, "--qrels", good_qrels(tmp_path))
    refused(result, folder, None, None, "is a folder, expected a file")


def test_eval_run_out_holds_every_id_index_accepted(eval_index: Path, tmp_path: Path) -> None:
    queries = put(
        tmp_path,
        "queries.jsonl",
        '{"id": "q1", "text": "vitamin C scurvy"}\n{"id": "q2", "text": "thiamine"}\n',
    )
    run_out = tmp_path / "out" / "run.trec"
    args = ("--queries", queries, "--qrels", good_qrels(tmp_path), "--run-out", run_out)
    result = odqa("eval", eval_index, *args, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["mrr@10"] == pytest.approx(1.0)
    assert "q2 Q0 1e400 1 " in run_out.read_text(encoding="utf-8")
    taken = tmp_path / "taken"
    taken.mkdir()
    result = odqa("eval", eval_index, *args[:-1], taken)
    refused(result, taken, None, None, "cannot write the run file: is a folder")


# --- documents larger than odqa reads -----------------------------------------------------------


@pytest.fixture()
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """A limit of 4 KiB stands in for the 64 MiB one, in every reader that applies it."""
    import odqa.corpus.records as records
    import odqa.corpus.schema as schema
    import odqa.corpus.textdir as textdir
    import odqa.corpus.textio as textio

    for module in (records, schema, textdir, textio):
        monkeypatch.setattr(module, "MAX_DOCUMENT_BYTES", 4096)
    return 4096


def test_a_line_over_the_limit_is_refused_without_reading_it_whole(
    tmp_path: Path, small_limit: int, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = json.dumps({"id": "big", "text": "word " * 100_000})
    path = put(tmp_path, "corpus.jsonl.gz", JSONL_DOC + huge + "\n" + JSONL_DOC)
    read: list[int] = []
    real = gzip.GzipFile.readline

    def counted(self, size=-1):
        line = real(self, size)
        read.append(len(line))
        return line

    monkeypatch.setattr(gzip.GzipFile, "readline", counted)
    says = located(lambda: list(read_documents(path)), path, 2, None)
    assert "the line holds more than 4 KiB: odqa reads documents of at most 4 KiB; split it" in says
    assert max(read) <= small_limit + 1  # the long line was never read whole
    refused(index(path, tiny_model), path, 2, None, "split it")


def test_a_text_file_or_a_table_row_over_the_limit_is_refused(
    tmp_path: Path, small_limit: int
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "notes"
    put(folder, "a.txt", "fine")
    big = put(folder, "b.md", "word " * 1000)
    located(lambda: list(read_documents(folder)), big, None, None)
    table = tmp_path / "corpus.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": "a", "text": "x" * 5000}]), table)
    with pytest.raises(InputError, match=r"row 1: field 'text': holds more than"):
        list(read_documents(table))
