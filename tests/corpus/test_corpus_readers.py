"""Readers of documents, queries and qrels: every format, every bad input, the shared data."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import shared_data
from odqa.corpus import Document, Query, read_documents, read_qrels, read_queries
from odqa.corpus.textio import load_json, read_lines, read_text
from odqa.errors import InputError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    return write(path, "".join(json.dumps(record) + "\n" for record in records))


def write_json(path: Path, value: Any) -> Path:
    return write(path, json.dumps(value, indent=1))


def input_error(call: Callable[[], Any], path: Path, line: int | None, field: str | None) -> str:
    """Run ``call``, expect an InputError located at path/line/field; return its message."""
    with pytest.raises(InputError) as caught:
        call()
    error = caught.value
    where = f"{path}:{line}" if line is not None else str(path)
    text = str(error)
    assert text.startswith(where + ":"), text
    if field is not None:
        assert text.startswith(f"{where}: field '{field}': "), text
    assert (error.path, error.line, error.field) == (str(path), line, field)
    return error.message


def documents(path: Path, fmt: str = "auto") -> list[Document]:
    return list(read_documents(path, fmt))


# --- text files -------------------------------------------------------------------------------


def test_read_lines_numbers_lines_and_reads_gzip(tmp_path: Path) -> None:
    plain = write(tmp_path / "a.txt", "\ufefffirst\nsecond\r\n\nlast")
    packed = write(tmp_path / "b.txt.gz", "first\nsecond\r\n\nlast")
    expected = [(1, "first\n"), (2, "second\r\n"), (3, "\n"), (4, "last")]
    assert list(read_lines(plain)) == expected
    assert list(read_lines(packed)) == expected


def test_gzip_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_bytes(gzip.compress(b'{"id": "a", "text": "x"}\n'))
    assert [doc.id for doc in read_documents(path)] == ["a"]


def test_bad_utf8_names_file_line_byte_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"id": "a", "text": "ok"}\n{"id": "b", "text": "caf\xe9"}\n')
    message = input_error(lambda: documents(path), path, 2, None)
    assert message == "not valid UTF-8 (byte 0xe9 at column 25)"


def test_bad_utf8_in_gzip_and_in_whole_file_reads(tmp_path: Path) -> None:
    packed = tmp_path / "bad.jsonl.gz"
    packed.write_bytes(gzip.compress(b"\n\n\xff\n"))
    assert "byte 0xff at column 1" in input_error(lambda: list(read_lines(packed)), packed, 3, None)
    whole = tmp_path / "bad.json"
    whole.write_bytes(b'{\n "data": ["\xc3\xa9", "\xe9"]\n}')
    message = input_error(lambda: read_text(whole), whole, 2, None)
    assert message == "not valid UTF-8 (byte 0xe9 at column 17)"


def test_missing_unreadable_and_damaged_files_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.jsonl"
    assert "no such file" in input_error(lambda: list(read_lines(missing)), missing, None, None)
    assert "folder" in input_error(lambda: read_text(tmp_path), tmp_path, None, None)
    damaged = tmp_path / "cut.jsonl.gz"
    lines = "".join(json.dumps({"id": str(n), "text": "x"}) + "\n" for n in range(1000))
    damaged.write_bytes(gzip.compress(lines.encode())[:-100])
    assert "cannot read the file after line" in input_error(
        lambda: documents(damaged), damaged, None, None
    )
    assert "no such file" in input_error(lambda: read_documents(missing), missing, None, None)


def test_load_json_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.json", '{\n  "data": [\n    1,,\n  ]\n}')
    assert "malformed JSON" in input_error(lambda: load_json(path), path, 3, None)


# --- JSONL documents --------------------------------------------------------------------------


def test_jsonl_documents_schema(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "docs.jsonl",
        [
            {"id": "a", "text": "Alpha.", "title": "A", "metadata": {"year": 2020}, "lang": "en"},
            {"_id": 7, "text": ""},
            {"id": "c", "text": "Gamma.", "title": None, "_id": "other"},
        ],
    )
    assert documents(path) == [
        Document("a", "Alpha.", "A", {"year": 2020, "lang": "en"}),
        Document("7", "", "", {}),
        Document("c", "Gamma.", "", {"_id": "other"}),
    ]


def test_jsonl_blank_lines_gzip_and_json_suffix(tmp_path: Path) -> None:
    text = '\n{"id": "a", "text": "x"}\n   \n{"id": "b", "text": "y"}\n\n'
    for name in ("docs.jsonl", "docs.jsonl.gz", "docs.json", "docs.json.gz"):
        path = write(tmp_path / name, text)
        assert [doc.id for doc in read_documents(path)] == ["a", "b"], name
    assert [doc.id for doc in read_documents(tmp_path / "docs.json", "jsonl")] == ["a", "b"]


def test_read_documents_streams(tmp_path: Path) -> None:
    path = write(tmp_path / "docs.jsonl", '{"id": "a", "text": "x"}\nnot json\n')
    stream = read_documents(path)
    assert next(stream).id == "a"
    input_error(lambda: next(stream), path, 2, None)


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        ('{"text": "no id"}', "id", "missing id"),
        ('{"id": "", "text": "x"}', "id", "empty id"),
        ('{"_id": "  ", "text": "x"}', "_id", "empty id"),
        ('{"id": ["a"], "text": "x"}', "id", "must be a string or a number, got an array"),
        ('{"id": "b"}', "text", "missing field"),
        ('{"id": "b", "text": 3}', "text", "must be a string, got an integer"),
        ('{"id": "b", "text": null}', "text", "must be a string, got null"),
        ('{"id": "b", "text": "x", "title": 1}', "title", "must be a string"),
        ('{"id": "b", "text": "x", "metadata": []}', "metadata", "must be an object"),
        ('{"id": "b", "text": "x", "k": 1, "metadata": {"k": 2}}', "k", "both"),
        ('{"id": "a", "text": "again"}', "id", "duplicate id 'a' (first on line 1)"),
    ],
)
def test_jsonl_document_errors(tmp_path: Path, line: str, field: str, expected: str) -> None:
    path = write(tmp_path / "docs.jsonl", '{"id": "a", "text": "fine"}\n\n' + line + "\n")
    assert expected in input_error(lambda: documents(path), path, 3, field)


@pytest.mark.parametrize(
    ("line", "expected"),
    [("{'id': 'a'}", "malformed JSON at column 2"), ('["a", "b"]', "got an array")],
)
def test_jsonl_malformed_lines(tmp_path: Path, line: str, expected: str) -> None:
    path = write(tmp_path / "docs.jsonl", '{"id": "a", "text": "fine"}\n' + line + "\n")
    assert expected in input_error(lambda: documents(path), path, 2, None)


# --- CSV / TSV documents ----------------------------------------------------------------------


def test_csv_documents(tmp_path: Path) -> None:
    path = write(
        tmp_path / "docs.csv",
        'id,title,text,source,metadata\n1,One,"Plain, with comma",web,\n'
        '2,,"Two\nlines, ""quoted""",book,"{""page"": 3}"\n\n3,Three,,,\n',
    )
    assert documents(path) == [
        Document("1", "Plain, with comma", "One", {"source": "web"}),
        Document("2", 'Two\nlines, "quoted"', "", {"source": "book", "page": 3}),
        Document("3", "", "Three", {"source": ""}),
    ]


def test_tsv_documents_gzip_and_long_fields(tmp_path: Path) -> None:
    long_text = "word " * 40_000
    path = write(tmp_path / "docs.tsv.gz", f"_id\ttext\na\tfirst\nb\t{long_text}\n")
    assert [(doc.id, len(doc.text)) for doc in read_documents(path)] == [
        ("a", 5),
        ("b", len(long_text)),
    ]
    assert [doc.id for doc in read_documents(path, "tsv")] == ["a", "b"]


def test_csv_without_text_column(tmp_path: Path) -> None:
    path = write(tmp_path / "docs.csv", "id,body\n1,hello\n")
    message = input_error(lambda: documents(path), path, 1, "text")
    assert "columns found: 'id', 'body'" in message


def test_csv_without_id_column(tmp_path: Path) -> None:
    path = write(tmp_path / "docs.csv", "title,text\nA,hello\n")
    assert "no 'id' column" in input_error(lambda: documents(path), path, 1, "id")


def test_csv_wrong_column_count_reports_line_after_multiline_row(tmp_path: Path) -> None:
    path = write(tmp_path / "docs.csv", 'id,title,text\n1,T,"two\nlines"\n2,only-two\n3,a,b,c\n')
    message = input_error(lambda: documents(path), path, 4, "text")
    assert "expected 3 columns (id, title, text), found 2" in message
    longer = write(tmp_path / "long.csv", "id,title,text\n1,a,b,c\n")
    assert "found 4" in input_error(lambda: documents(longer), longer, 2, "column 4")


@pytest.mark.parametrize(
    ("row", "field", "expected"),
    [
        (",T,x,", "id", "empty id"),
        ("a,T,again,", "id", "duplicate id 'a' (first on line 2)"),
        ('b,T,x,"[1]"', "metadata", "must be a JSON object"),
    ],
)
def test_csv_row_errors(tmp_path: Path, row: str, field: str, expected: str) -> None:
    path = write(tmp_path / "docs.csv", f"id,title,text,metadata\na,T,fine,\n{row}\n")
    assert expected in input_error(lambda: documents(path), path, 3, field)


def test_csv_duplicate_column(tmp_path: Path) -> None:
    path = write(tmp_path / "docs.tsv", "id\ttext\ttext\n")
    assert "twice" in input_error(lambda: documents(path), path, 1, "text")


# --- BEIR -------------------------------------------------------------------------------------


def beir_folder(root: Path) -> Path:
    write_jsonl(
        root / "corpus.jsonl.gz",
        [{"_id": "d1", "title": "T1", "text": "one"}, {"_id": "d2", "title": "", "text": "two"}],
    )
    write_jsonl(root / "queries.jsonl", [{"_id": "q1", "text": "first?", "metadata": {}}])
    write(root / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n")
    write(root / "qrels" / "dev.tsv", "query-id\tcorpus-id\tscore\nq9\td2\t2\n")
    return root


def test_beir_folder(tmp_path: Path) -> None:
    root = beir_folder(tmp_path / "beir")
    assert [doc.id for doc in read_documents(root)] == ["d1", "d2"]
    assert read_queries(root) == [Query("q1", "first?")]
    assert read_qrels(root) == {"q1": {"d1": 1, "d2": 0}}
    assert read_qrels(root / "qrels" / "dev.tsv") == {"q9": {"d2": 2}}
    assert read_qrels(root / "qrels" / "dev.tsv", "beir") == {"q9": {"d2": 2}}
    assert [doc.id for doc in read_documents(root, "beir")] == ["d1", "d2"]


def test_beir_folder_without_test_qrels_lists_splits(tmp_path: Path) -> None:
    root = beir_folder(tmp_path / "beir")
    (root / "qrels" / "test.tsv").unlink()
    message = input_error(lambda: read_qrels(root), root, None, None)
    assert "no qrels/test.tsv" in message
    assert "dev.tsv" in message


def test_beir_format_on_a_folder_without_corpus(tmp_path: Path) -> None:
    message = input_error(lambda: read_documents(tmp_path, "beir"), tmp_path, None, None)
    assert "corpus.jsonl" in message


# --- SQuAD ------------------------------------------------------------------------------------

SQUAD = {
    "version": "v2.0",
    "data": [
        {
            "title": "Alps",
            "paragraphs": [
                {
                    "context": "The Alps are high.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "What is high?",
                            "answers": [
                                {"text": "The Alps", "answer_start": 0},
                                {"text": "Alps", "answer_start": 4},
                                {"text": "The Alps", "answer_start": 0},
                            ],
                        }
                    ],
                },
                {"context": "Snow falls.", "qas": []},
            ],
        },
        {
            "title": "Seas",
            "paragraphs": [
                {
                    "context": "Seas are wet.",
                    "qas": [
                        {"id": "q2", "question": "Dry?", "answers": [], "is_impossible": True},
                        {
                            "id": "q3",
                            "question": "Wet?",
                            "answers": [{"text": "Seas", "answer_start": 0}],
                        },
                    ],
                }
            ],
        },
    ],
}


def test_squad(tmp_path: Path) -> None:
    path = write_json(tmp_path / "squad.json", SQUAD)
    assert documents(path) == [
        Document("0-0", "The Alps are high.", "Alps"),
        Document("0-1", "Snow falls.", "Alps"),
        Document("1-0", "Seas are wet.", "Seas"),
    ]
    queries = read_queries(path)
    assert queries[0] == Query(
        "q1", "What is high?", ("The Alps", "Alps"), {"doc_id": "0-0", "answer_starts": [0, 4]}
    )
    assert [(query.id, query.answers) for query in queries[1:]] == [("q2", ()), ("q3", ("Seas",))]
    assert read_qrels(path) == {"q1": {"0-0": 1}, "q3": {"1-0": 1}}
    assert read_qrels(path, "squad") == read_qrels(path)


def test_squad_one_line_file_is_detected(tmp_path: Path) -> None:
    path = write(tmp_path / "dev.json", json.dumps(SQUAD))
    assert len(documents(path)) == 3


def test_squad_errors_name_the_json_field(tmp_path: Path) -> None:
    broken = json.loads(json.dumps(SQUAD))
    del broken["data"][1]["paragraphs"][0]["context"]
    path = write_json(tmp_path / "squad.json", broken)
    input_error(lambda: documents(path), path, None, "data[1].paragraphs[0].context")
    broken["data"][1]["paragraphs"][0]["context"] = "back"
    broken["data"][1]["paragraphs"][0]["qas"][1]["id"] = "q1"
    write_json(path, broken)
    message = input_error(lambda: read_queries(path), path, None, "data[1].paragraphs[0].qas[1].id")
    assert "duplicate id 'q1'" in message
    broken["data"][1]["paragraphs"][0]["qas"][1].update(id="q4", question=" ")
    write_json(path, broken)
    field = "data[1].paragraphs[0].qas[1].question"
    assert "empty query text" in input_error(lambda: read_queries(path), path, None, field)


# --- BioASQ -----------------------------------------------------------------------------------


def snippet(pmid: str, begin: int, end: int, text: str) -> dict[str, Any]:
    return {
        "document": f"http://www.ncbi.nlm.nih.gov/pubmed/{pmid}",
        "beginSection": "abstract",
        "endSection": "abstract",
        "offsetInBeginSection": begin,
        "offsetInEndSection": end,
        "text": text,
    }


BIOASQ = {
    "questions": [
        {
            "id": "y1",
            "type": "yesno",
            "body": "Is water wet?",
            "documents": ["http://www.ncbi.nlm.nih.gov/pubmed/11"],
            "snippets": [snippet("11", 0, 10, "Water is wet"), snippet("12", 5, 9, "Very wet")],
            "exact_answer": "Yes",
            "ideal_answer": ["Yes, it is."],
        },
        {
            "id": "f1",
            "type": "factoid",
            "body": "Which gene?",
            "snippets": [snippet("11", 0, 10, "Water is wet")],
            "exact_answer": [["BRCA1", "brca-1"], ["TP53"]],
            "ideal_answer": ["BRCA1."],
        },
        {
            "id": "l1",
            "type": "list",
            "body": "Which drugs?",
            "snippets": [snippet("13", 1, 2, "Drug A and drug B")],
            "exact_answer": [["drug A"], ["drug B"], ["drug A"]],
            "ideal_answer": ["A and B."],
        },
        {
            "id": "s1",
            "type": "summary",
            "body": "Describe X.",
            "snippets": [],
            "ideal_answer": ["X is Y."],
        },
    ]
}


def test_bioasq(tmp_path: Path) -> None:
    path = write_json(tmp_path / "batch.json", BIOASQ)
    assert documents(path) == [
        Document(
            "11:abstract:0-10",
            "Water is wet",
            metadata={
                "pmid": "11",
                "section": "abstract",
                "url": snippet("11", 0, 0, "")["document"],
            },
        ),
        Document(
            "12:abstract:5-9",
            "Very wet",
            metadata={
                "pmid": "12",
                "section": "abstract",
                "url": snippet("12", 0, 0, "")["document"],
            },
        ),
        Document(
            "13:abstract:1-2",
            "Drug A and drug B",
            metadata={
                "pmid": "13",
                "section": "abstract",
                "url": snippet("13", 0, 0, "")["document"],
            },
        ),
    ]
    queries = {query.id: query for query in read_queries(path)}
    assert queries["y1"].answers == ("yes",)
    assert queries["y1"].metadata == {
        "type": "yesno",
        "exact_answer": "Yes",
        "ideal_answer": ["Yes, it is."],
    }
    assert queries["f1"].answers == ("BRCA1", "brca-1", "TP53")
    assert queries["l1"].answers == ("drug A", "drug B")
    assert queries["s1"].answers == ()
    assert queries["s1"].metadata["exact_answer"] is None
    assert read_qrels(path) == {
        "y1": {"11:abstract:0-10": 1, "12:abstract:5-9": 1},
        "f1": {"11:abstract:0-10": 1},
        "l1": {"13:abstract:1-2": 1},
    }


def test_bioasq_errors(tmp_path: Path) -> None:
    broken = json.loads(json.dumps(BIOASQ))
    broken["questions"][1]["snippets"][0]["text"] = "Water is dry"
    path = write_json(tmp_path / "batch.json", broken)
    message = input_error(lambda: documents(path), path, None, "questions[1].snippets[0].text")
    assert "different text" in message
    broken["questions"][1]["snippets"][0]["offsetInBeginSection"] = "0"
    write_json(path, broken)
    field = "questions[1].snippets[0].offsetInBeginSection"
    assert "must be an integer" in input_error(lambda: read_qrels(path), path, None, field)
    broken["questions"][2]["id"] = "y1"
    write_json(path, broken)
    assert "duplicate id" in input_error(lambda: read_queries(path), path, None, "questions[2].id")


# --- folders of text files --------------------------------------------------------------------


def test_textdir(tmp_path: Path) -> None:
    root = tmp_path / "notes"
    write(root / "b.md", "\n# Bee heading\nBees make honey.\n")
    write(root / "a.txt", "Plain text, no heading.")
    write(root / "sub" / "c.MD", "#NotAHeading\n")
    write(root / "sub" / "skip.pdf", "binary")
    write(root / ".hidden" / "d.txt", "hidden")
    write(root / ".e.txt", "hidden too")
    expected = [
        Document("a.txt", "Plain text, no heading.", "a"),
        Document("b.md", "\n# Bee heading\nBees make honey.\n", "Bee heading"),
        Document("sub/c.MD", "#NotAHeading\n", "c"),
    ]
    assert documents(root) == expected
    assert documents(root, "textdir") == expected


def test_textdir_is_not_guessed_beside_data_files(tmp_path: Path) -> None:
    root = tmp_path / "download"
    write(root / "SOURCE.md", "# Where it came from")
    write_json(root / "dev-v1.1.json", {"data": []})
    message = input_error(lambda: documents(root), root, None, None)
    assert "data files (dev-v1.1.json) beside its .txt/.md files" in message
    assert "--format textdir" in message
    (root / "dev-v1.1.json").unlink()
    write_json(root / ".markdownlint.json", {"MD013": False})  # hidden: not a data file
    assert [document.id for document in documents(root)] == ["SOURCE.md"]
    assert documents(root, "textdir") == [
        Document("SOURCE.md", "# Where it came from", "Where it came from")
    ]


def test_textdir_ids_carry_no_whitespace(tmp_path: Path) -> None:
    root = tmp_path / "notes"
    write(root / "my notes" / "100% done.md", "Done.")
    write(root / "tab\there.txt", "Tab.")
    ids = [document.id for document in documents(root)]
    assert ids == ["my%20notes/100%25%20done.md", "tab%09here.txt"]


def test_textdir_bad_utf8_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes" / "bad.txt"
    write(tmp_path / "notes" / "a.txt", "fine")
    bad.write_bytes(b"line one\nline \xc3\x28 two\n")
    message = input_error(lambda: documents(tmp_path / "notes"), bad, 2, None)
    assert "byte 0xc3 at column 6" in message


# --- format detection -------------------------------------------------------------------------


def test_auto_detection_errors_say_why(tmp_path: Path) -> None:
    odd = write(tmp_path / "docs.xml", "<docs/>")
    assert "'.xml'" in input_error(lambda: read_documents(odd), odd, None, None)
    other = write_json(tmp_path / "other.json", {"items": []})
    message = input_error(lambda: read_documents(other), other, None, None)
    assert "top-level keys ['items']" in message
    assert "'data' (SQuAD) or 'questions' (BioASQ)" in message
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "textdir" in input_error(lambda: read_documents(empty), empty, None, None)
    assert "queries.jsonl" in input_error(lambda: read_queries(empty), empty, None, None)
    with pytest.raises(InputError, match="unknown format 'xml'"):
        read_documents(odd, "xml")
    with pytest.raises(InputError, match="unknown format 'csv'"):
        read_qrels(odd, "csv")


def test_auto_detection_of_json_kinds(tmp_path: Path) -> None:
    lines = write_jsonl(tmp_path / "queries.json", [{"id": "q", "text": "why?"}])
    assert read_queries(lines) == [Query("q", "why?")]
    bio = write_json(tmp_path / "b.json", BIOASQ)
    assert len(read_queries(bio)) == 4
    message = input_error(lambda: read_qrels(lines), lines, None, None)
    assert "expected 'data' (SQuAD) or 'questions' (BioASQ)" in message


# --- queries ----------------------------------------------------------------------------------


def test_jsonl_queries(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "queries.jsonl",
        [
            {"id": 1, "text": "who?", "answers": ["me", "you"], "lang": "en"},
            {"_id": "2", "text": "what?", "metadata": {"split": "dev"}},
        ],
    )
    assert read_queries(path) == [
        Query("1", "who?", ("me", "you"), {"lang": "en"}),
        Query("2", "what?", (), {"split": "dev"}),
    ]


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        ('{"id": "b", "text": ""}', "text", "empty query text"),
        ('{"id": "b", "text": "  "}', "text", "empty query text"),
        ('{"id": "b"}', "text", "missing field"),
        ('{"id": "b", "text": "x", "answers": "yes"}', "answers", "array of strings"),
        ('{"text": "x"}', "id", "missing id"),
        ('{"id": "a", "text": "x"}', "id", "duplicate id 'a' (first on line 1)"),
    ],
)
def test_jsonl_query_errors(tmp_path: Path, line: str, field: str, expected: str) -> None:
    path = write(tmp_path / "queries.jsonl", '{"id": "a", "text": "fine"}\n' + line + "\n")
    assert expected in input_error(lambda: read_queries(path), path, 2, field)


def test_tsv_queries(tmp_path: Path) -> None:
    plain = write(tmp_path / "queries.tsv", "1\twhat is up\n2\ttabs\tinside\n\n")
    assert read_queries(plain) == [Query("1", "what is up"), Query("2", "tabs\tinside")]
    for header in ("id\ttext", "query-id\tquery", "qid\tquestion"):
        path = write(tmp_path / "with-header.tsv", f"{header}\n1\twhat is up\n")
        assert read_queries(path) == [Query("1", "what is up")], header
    assert read_queries(write(tmp_path / "q.txt", "7\tseven\n")) == [Query("7", "seven")]


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        ("2 no tab", "text", "expected 'id<TAB>text'"),
        ("2\t ", "text", "empty query text"),
        ("\tx", "id", "empty id"),
        ("1\tagain", "id", "duplicate id '1' (first on line 1)"),
    ],
)
def test_tsv_query_errors(tmp_path: Path, line: str, field: str, expected: str) -> None:
    path = write(tmp_path / "queries.tsv", f"1\tfine\n{line}\n")
    assert expected in input_error(lambda: read_queries(path), path, 2, field)


# --- qrels ------------------------------------------------------------------------------------


def test_trec_and_beir_qrels(tmp_path: Path) -> None:
    trec = write(tmp_path / "qrels.txt", "q1 0 d1 1\nq1 0 d2 0\n\nq2\t0\td3\t2\nq1 0 d1 1\n")
    expected = {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}}
    assert read_qrels(trec) == expected
    assert read_qrels(trec, "trec") == expected
    beir = write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t2\n")
    assert read_qrels(beir) == {"q1": {"d1": 1}, "q2": {"d3": 2}}
    headless = write(tmp_path / "plain.tsv.gz", "q1\td1\t1\n")
    assert read_qrels(headless) == {"q1": {"d1": 1}}


@pytest.mark.parametrize(
    ("text", "fmt", "line", "field", "expected"),
    [
        ("q1 0 d1 1\nq1 0 d2 yes\n", "auto", 2, "relevance", "must be an integer, got 'yes'"),
        ("q1 0 d1 1\nq1 0 d2 1.5\n", "trec", 2, "relevance", "must be an integer, got '1.5'"),
        ("q1 0 d1 1\nq1 d2 1\n", "auto", 2, "relevance", "expected 4 columns"),
        ("q1\td1\t1\nq1\td2\n", "auto", 2, "score", "expected 3 columns"),
        ("q1\td1\t1\nq1\td2\tx\n", "beir", 2, "score", "must be an integer"),
        ("q1 0 d1 1\nq1 0 d1 0\n", "auto", 2, "relevance", "first on line 1"),
    ],
)
def test_qrels_errors(
    tmp_path: Path, text: str, fmt: str, line: int, field: str, expected: str
) -> None:
    path = write(tmp_path / "qrels.txt", text)
    assert expected in input_error(lambda: read_qrels(path, fmt), path, line, field)


@pytest.mark.parametrize("grade", [2**16, 2**32, 2**62, 2**63 - 1, 2**63, 2**70, -(2**31)])
def test_relevance_grades_outside_what_trec_eval_handles_are_refused(
    tmp_path: Path, grade: int
) -> None:
    path = write(tmp_path / "qrels.txt", f"q1 0 d1 1\nq1 0 d2 {grade}\n")
    message = input_error(lambda: read_qrels(path), path, 2, "relevance")
    assert f"got {grade}" in message and "from -2147483647 to 65535" in message


def test_qrels_with_unknown_width(tmp_path: Path) -> None:
    path = write(tmp_path / "qrels.txt", "q1 d1\n")
    assert "BEIR qrels have 3, TREC qrels 4" in input_error(
        lambda: read_qrels(path), path, None, None
    )


# --- the shared data --------------------------------------------------------------------------


def test_scifact() -> None:
    folder = shared_data("beir-scifact")
    docs = documents(folder)
    assert len(docs) == 5183
    assert len({doc.id for doc in docs}) == 5183
    assert all(doc.text for doc in docs)
    queries = read_queries(folder)
    assert len(queries) == 1109
    qrels = read_qrels(folder)
    assert len(qrels) == 300
    assert sum(len(judged) for judged in qrels.values()) == 339
    ids = {doc.id for doc in docs}
    assert all(doc_id in ids for judged in qrels.values() for doc_id in judged)
    assert {query.id for query in queries} >= qrels.keys()
    assert read_qrels(folder / "qrels" / "train.tsv").keys() <= {query.id for query in queries}


def test_squad_dev() -> None:
    path = shared_data("squad-v1.1", "dev-v1.1.json")
    docs = documents(path)
    assert len(docs) == 2067
    queries = read_queries(path)
    assert len(queries) == 10570
    texts = {doc.id: doc.text for doc in docs}
    for query in queries:
        context = texts[query.metadata["doc_id"]]
        starts = query.metadata["answer_starts"]
        assert len(starts) == len(query.answers) > 0
        assert all(
            context[start : start + len(answer)] == answer
            for answer, start in zip(query.answers, starts, strict=True)
        )
    assert read_qrels(path) == {query.id: {query.metadata["doc_id"]: 1} for query in queries}


def test_bioasq_golden() -> None:
    folder = shared_data("bioasq-12b-golden")
    total_queries = 0
    kinds: dict[str, int] = {}
    for path in sorted(folder.glob("12B*_golden.json")):
        ids = {doc.id for doc in read_documents(path)}
        qrels = read_qrels(path)
        assert qrels
        assert all(doc_id in ids for judged in qrels.values() for doc_id in judged)
        queries = read_queries(path)
        total_queries += len(queries)
        for query in queries:
            kinds[query.metadata["type"]] = kinds.get(query.metadata["type"], 0) + 1
            if query.metadata["type"] == "yesno":
                assert query.answers in (("yes",), ("no",))
            elif query.metadata["type"] in ("factoid", "list"):
                assert query.answers
    assert total_queries == 340
    assert kinds == {"yesno": 102, "factoid": 85, "list": 80, "summary": 73}


def test_count_documents_counts_lines_fast_where_records_are_lines(tmp_path: Path) -> None:
    import gzip

    from odqa.corpus.readers import count_documents

    rows = "".join(f'{{"id": "d{i}", "text": "t"}}\n' for i in range(5))
    (tmp_path / "c.jsonl").write_text(rows, encoding="utf-8")
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress(rows.encode()[:-1]))  # no last newline
    (tmp_path / "c.csv").write_text("id,text\na,x\nb,y\n", encoding="utf-8")
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(rows.encode() * 50)[:-20])
    squad = {"data": [{"title": "T", "paragraphs": [{"context": "c", "qas": []}]}]}
    (tmp_path / "s.json").write_text(json.dumps(squad), encoding="utf-8")
    assert count_documents(tmp_path / "c.jsonl") == 5
    assert count_documents(tmp_path / "c.jsonl.gz") == 5
    assert count_documents(tmp_path / "c.csv") == 2
    assert count_documents(tmp_path / "cut.jsonl.gz") is None  # reading proper says where
    assert count_documents(tmp_path / "s.json") is None


def test_id_registry_finds_duplicates_among_packed_ids_and_names_the_first_place() -> None:
    from odqa.corpus.schema import IdRegistry, Row

    lines = IdRegistry(recent=4)
    for number in range(1, 11):
        lines.add(f"doc-{number}", ("c.jsonl", number))
    assert len(lines) == 10 and len(lines._recent) == 2  # eight packed into digests
    for seen, first in (("doc-1", "line 1"), ("doc-7", "line 7"), ("doc-10", "line 10")):
        with pytest.raises(InputError, match=f"duplicate id '{seen}' \\(first on {first}\\)"):
            lines.add(seen, ("c.jsonl", 11))
    lines.add("doc-11", ("c.jsonl", 11))  # a refused id is not recorded; new ones still are
    rows = IdRegistry(recent=2)
    for number in range(1, 6):
        rows.add(f"r{number}", ("t.parquet", Row(number)))
    with pytest.raises(InputError, match=r"duplicate id 'r2' \(first on row 2\)"):
        rows.add("r2", ("t.parquet", Row(6)))
    unplaced = IdRegistry(recent=2)
    for number in range(5):
        unplaced.add(f"q{number}", ("s.json", None), "data[0].id")
    with pytest.raises(InputError, match=r"duplicate id 'q0'$"):
        unplaced.add("q0", ("s.json", None), "data[9].id")
