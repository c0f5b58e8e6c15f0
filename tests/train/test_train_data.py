"""Training data formats: JSONL shapes, ids, labelled groups, teacher scores, BEIR, SQuAD."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odqa.errors import InputError
from odqa.train.data import read_training_data
from odqa.train.examples import TrainingExample


def write_lines(path: Path, *records: object) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


@pytest.fixture()
def queries_file(tmp_path: Path) -> Path:
    return write_lines(
        tmp_path / "queries.jsonl",
        {"id": "q1", "text": "what causes scurvy?"},
        {"id": "q2", "text": "what causes rickets?"},
    )


def test_jsonl_shapes(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "train.jsonl",
        {"query": "q one", "positive": "p one"},
        {"query": "q two", "positive": "p two", "negative": "n two"},
        {"query": "q three", "positive": "p three", "negatives": ["n3a", "n3b"]},
        {"query": "q four", "documents": ["a", "b", "c"], "scores": [12.1, 8, -1.5]},
        {"query": "q five", "positive": "p five", "negatives": []},
    )
    origin = f"{path}:"
    assert read_training_data(path) == [
        TrainingExample("q one", ("p one",), origin=origin + "1"),
        TrainingExample("q two", ("p two", "n two"), origin=origin + "2"),
        TrainingExample("q three", ("p three", "n3a", "n3b"), origin=origin + "3"),
        TrainingExample("q four", ("a", "b", "c"), (12.1, 8.0, -1.5), origin + "4"),
        TrainingExample("q five", ("p five",), origin=origin + "5"),
    ]


def test_labelled_pairs_group_by_query(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "labelled.jsonl",
        {"query": "qa", "text": "a-neg-1", "label": 0},
        {"query": "qb", "text": "b-pos", "label": True},
        {"query": "qa", "text": "a-pos-1", "label": 1},
        {"query": "qa", "text": "a-neg-2", "label": False},
        {"query": "qa", "text": "a-pos-2", "label": 2},
    )
    examples = read_training_data(path)
    assert [(e.query, e.texts, e.origin.rsplit(":", 1)[1]) for e in examples] == [
        ("qb", ("b-pos",), "2"),
        ("qa", ("a-pos-1", "a-neg-1", "a-neg-2"), "3"),
        ("qa", ("a-pos-2", "a-neg-1", "a-neg-2"), "5"),
    ]


def test_labelled_query_without_positive(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "labelled.jsonl",
        {"query": "qa", "text": "a-pos", "label": 1},
        {"query": "qb", "text": "b-neg", "label": 0},
        {"query": "qb", "text": "b-neg-2", "label": 0},
    )
    with pytest.raises(InputError, match="no row with a positive label") as caught:
        read_training_data(path)
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), 2, "label")


def test_ids_resolve_against_corpus_and_queries(
    tmp_path: Path, small_corpus: Path, queries_file: Path
) -> None:
    path = write_lines(
        tmp_path / "ids.jsonl",
        {"query_id": "q1", "positive_id": "d1", "negative_ids": ["d2", 5]},
        {"query_id": "q2", "positive_id": "d2", "negative_id": "d1"},
        {"query": "free text", "text_id": "d3", "label": 1},
        {"query_id": "q1", "document_ids": ["d1", "d4"], "scores": [3, 1]},
        {"query": "both given", "query_id": "q1", "positive": "text wins", "positive_id": "dx"},
    )
    with small_corpus.open("a", encoding="utf-8") as corpus:
        corpus.write(json.dumps({"id": 5, "text": "Five."}) + "\n")
    examples = read_training_data(path, corpus=small_corpus, queries=queries_file)
    scurvy = "Scurvy Scurvy is caused by a lack of vitamin C."
    rickets = "Rickets Rickets comes from too little vitamin D."
    assert [(e.query, e.texts, e.scores) for e in examples] == [
        ("what causes scurvy?", (scurvy, rickets, "Five."), None),
        ("what causes rickets?", (rickets, scurvy), None),
        ("free text", ("Beriberi Beriberi follows a deficiency of thiamine.",), None),
        (
            "what causes scurvy?",
            (scurvy, "Proteins Kinases phosphorylate proteins in cells."),
            (3.0, 1.0),
        ),
        ("both given", ("text wins",), None),
    ]


def test_unknown_id_names_line_field_and_id(
    tmp_path: Path, small_corpus: Path, queries_file: Path
) -> None:
    path = write_lines(
        tmp_path / "ids.jsonl",
        {"query_id": "q1", "positive_id": "d1"},
        {"query_id": "q1", "positive_id": "d1", "negative_ids": ["d2", "nope"]},
    )
    with pytest.raises(InputError, match="'nope'") as caught:
        read_training_data(path, corpus=small_corpus, queries=queries_file)
    assert (caught.value.line, caught.value.field) == (2, "negative_ids")
    bad_query = write_lines(tmp_path / "q.jsonl", {"query_id": "q9", "positive": "p"})
    with pytest.raises(InputError, match="'q9'") as caught:
        read_training_data(bad_query, queries=queries_file)
    assert (caught.value.line, caught.value.field) == (1, "query_id")


@pytest.mark.parametrize(
    ("record", "option"),
    [
        ({"query_id": "q1", "positive": "p"}, "queries"),
        ({"query": "q", "positive_id": "d1"}, "corpus"),
        ({"query": "q", "document_ids": ["d1"], "scores": [1]}, "corpus"),
    ],
)
def test_ids_without_their_source(tmp_path: Path, record: dict, option: str) -> None:
    path = write_lines(tmp_path / "ids.jsonl", {"query": "ok", "positive": "ok"}, record)
    with pytest.raises(InputError, match=f"pass {option}") as caught:
        read_training_data(path)
    assert caught.value.line == 2
    assert caught.value.field in ("query_id", "positive_id", "document_ids")


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"query": "  ", "positive": "p"}, "query", "empty"),
        ({"query": "q", "positive": ""}, "positive", "empty"),
        ({"query": "q", "positive": "p", "negatives": ["n", " "]}, "negatives", "item 1 is empty"),
        ({"query": "q", "positive": "p", "negative": 3}, "negative", "must be a string"),
        ({"query": "q", "positive": "p", "negatives": "n"}, "negatives", "must be an array"),
        ({"query": "q", "text": "t", "label": "yes"}, "label", "0/1 or a boolean"),
        ({"query": "q", "documents": ["a", "b"], "scores": [1.0]}, "scores", "1 scores for 2"),
        ({"query": "q", "documents": ["a"], "scores": [True]}, "scores", "finite number"),
        ({"query": "q", "documents": ["a"], "scores": ["1"]}, "scores", "finite number"),
        ({"query": "q", "documents": ["a"], "scores": 1}, "scores", "must be an array"),
        ({"query": "q", "documents": [], "scores": []}, "documents", "empty array"),
        ({"query": "q", "positive": "p", "extra": 1}, "extra", "accepted lines"),
        ({"positive": "p"}, "query", "accepted lines"),
        ({"query": "q", "text": "t"}, None, "match no known line"),
        ({"query": "q", "positive": "p", "negative": "n", "negatives": []}, None, "match no"),
    ],
)
def test_bad_lines(tmp_path: Path, record: dict, field: str | None, message: str) -> None:
    path = write_lines(tmp_path / "bad.jsonl", {"query": "fine", "positive": "fine"}, record)
    with pytest.raises(InputError, match=message) as caught:
        read_training_data(path)
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), 2, field)


def test_non_finite_score(tmp_path: Path) -> None:
    path = tmp_path / "nan.jsonl"
    path.write_text('{"query": "q", "documents": ["a", "b"], "scores": [1, NaN]}\n')
    with pytest.raises(InputError, match="item 1 must be a finite number, got nan") as caught:
        read_training_data(path)
    assert (caught.value.line, caught.value.field) == (1, "scores")


def test_malformed_and_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"query": "q", "positive": "p"}\n["not", "an object"]\n')
    with pytest.raises(InputError, match="expected a JSON object") as caught:
        read_training_data(path)
    assert caught.value.line == 2
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="no training examples"):
        read_training_data(empty)
    with pytest.raises(InputError, match="unknown format"):
        read_training_data(path, fmt="csv")


@pytest.fixture()
def beir_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    write_lines(
        folder / "corpus.jsonl",
        {"_id": "d1", "title": "Scurvy", "text": "Lack of vitamin C."},
        {"_id": "d2", "title": "", "text": "Too little vitamin D."},
        {"_id": "d3", "title": "Other", "text": "Unrelated."},
    )
    write_lines(
        folder / "queries.jsonl",
        {"_id": "q1", "text": "scurvy cause"},
        {"_id": "q2", "text": "rickets cause"},
    )
    (folder / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td3\t0\nq2\td2\t1\nq2\td1\t2\n"
    )
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq2\td3\t1\n")
    return folder


def test_beir_splits(beir_folder: Path) -> None:
    pairs = [(e.query, e.texts) for e in read_training_data(beir_folder)]
    assert pairs == [
        ("scurvy cause", ("Scurvy Lack of vitamin C.",)),
        ("rickets cause", ("Too little vitamin D.",)),
        ("rickets cause", ("Scurvy Lack of vitamin C.",)),
    ]
    test = read_training_data(beir_folder, qrels="test")
    assert [(e.query, e.texts) for e in test] == [("rickets cause", ("Other Unrelated.",))]
    by_path = read_training_data(beir_folder, qrels=beir_folder / "qrels" / "test.tsv")
    assert by_path == test
    with pytest.raises(InputError, match="splits found: test, train"):
        read_training_data(beir_folder, qrels="dev")


def test_beir_qrels_naming_unknown_ids(beir_folder: Path) -> None:
    (beir_folder / "qrels" / "train.tsv").write_text("q1\td9\t1\n")
    with pytest.raises(InputError, match="'d9' is not in") as caught:
        read_training_data(beir_folder)
    assert caught.value.field == "corpus-id"
    (beir_folder / "qrels" / "train.tsv").write_text("q7\td1\t1\n")
    with pytest.raises(InputError, match="'q7' is not in") as caught:
        read_training_data(beir_folder)
    assert caught.value.field == "query-id"


def test_squad_pairs_and_articles(tmp_path: Path) -> None:
    def article(title: str, contexts: list[str]) -> dict:
        paragraphs = [
            {
                "context": context,
                "qas": [
                    {
                        "id": f"{title}-{index}",
                        "question": f"{title} question {index}?",
                        "answers": [{"text": context[:4], "answer_start": 0}],
                    }
                ],
            }
            for index, context in enumerate(contexts)
        ]
        return {"title": title, "paragraphs": paragraphs}

    data = {"data": [article("A", ["Alpha one.", "Alpha two."]), article("B", ["Beta."])]}
    data["data"][1]["paragraphs"][0]["qas"].append(
        {"id": "B-x", "question": "unanswerable?", "answers": [], "is_impossible": True}
    )
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data))
    pairs = [(e.query, e.texts) for e in read_training_data(path)]
    assert pairs == [
        ("A question 0?", ("A Alpha one.",)),
        ("A question 1?", ("A Alpha two.",)),
        ("B question 0?", ("B Beta.",)),
    ]
    only_b = read_training_data(path, articles=range(1, 2))
    assert [(e.query, e.texts) for e in only_b] == [("B question 0?", ("B Beta.",))]
