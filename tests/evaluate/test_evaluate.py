"""TREC run files and retrieval metrics (pytrec_eval underneath)."""

from __future__ import annotations

import gzip
import json
import math
import random
from pathlib import Path

import pytest

from odqa.errors import InputError, OdqaError
from odqa.evaluate import Run, evaluate_run, read_trec_run, write_trec_run

# --- metrics -----------------------------------------------------------------------------------


def test_hand_computed_values_for_one_query() -> None:
    run = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}}
    metrics = evaluate_run(run, {"q1": {"d2": 1, "d1": 0}}, accuracy_at=[1, 2])
    assert metrics["mrr@10"] == pytest.approx(0.5)
    assert metrics["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert metrics["recall@10"] == metrics["recall@100"] == pytest.approx(1.0)
    assert metrics["accuracy@1"] == 0.0 and metrics["accuracy@2"] == 1.0
    assert list(metrics) == [
        "ndcg@10",
        "recall@10",
        "recall@100",
        "mrr@10",
        "accuracy@1",
        "accuracy@2",
        "queries",
        "queries_without_run",
        "run_queries_without_qrels",
    ]
    assert (metrics["queries"], metrics["queries_without_run"]) == (1, 0)


def test_graded_ndcg_uses_linear_gains() -> None:
    metrics = evaluate_run({"q": {"b": 2.0, "a": 1.0}}, {"q": {"a": 2, "b": 1}})
    dcg = 1 + 2 / math.log2(3)
    ideal = 2 + 1 / math.log2(3)
    assert metrics["ndcg@10"] == pytest.approx(dcg / ideal)
    assert metrics["mrr@10"] == pytest.approx(1.0)


def test_recall_counts_all_relevant_documents() -> None:
    run = {"q": {f"d{i:02d}": 100.0 - i for i in range(20)}}
    metrics = evaluate_run(run, {"q": {"d00": 1, "d15": 1, "missing": 1, "d01": 0}})
    assert metrics["recall@10"] == pytest.approx(1 / 3)
    assert metrics["recall@100"] == pytest.approx(2 / 3)


def test_mrr_is_cut_at_ten() -> None:
    run = {"q": {f"d{i:02d}": 100.0 - i for i in range(20)}}
    metrics = evaluate_run(run, {"q": {"d10": 1}}, accuracy_at=[10, 11])
    assert metrics["mrr@10"] == 0.0
    assert metrics["recall@100"] == 1.0
    assert (metrics["accuracy@10"], metrics["accuracy@11"]) == (0.0, 1.0)


def test_ties_are_broken_by_document_id_ascending() -> None:
    # trec_eval alone would put "b" first (it breaks ties by id descending).
    tied = {"q": {"b": 1.0, "a": 1.0}}
    assert evaluate_run(tied, {"q": {"a": 1}})["mrr@10"] == pytest.approx(1.0)
    assert evaluate_run(tied, {"q": {"b": 1}})["mrr@10"] == pytest.approx(0.5)


def test_figures_do_not_depend_on_insertion_order() -> None:
    rng = random.Random(7)
    qrels = {
        f"q{q}": {f"d{rng.randrange(150)}": rng.choice([1, 2]) for _ in range(4)} for q in range(30)
    }
    run = {
        f"q{q}": {f"d{d}": float(rng.randrange(12)) for d in rng.sample(range(150), 120)}
        for q in range(30)
    }
    expected = evaluate_run(run, qrels, accuracy_at=[1, 5, 20])
    for _ in range(3):
        shuffled = {}
        for qid in rng.sample(sorted(run), len(run)):
            items = list(run[qid].items())
            rng.shuffle(items)
            shuffled[qid] = dict(items)
        assert evaluate_run(shuffled, qrels, accuracy_at=[1, 5, 20]) == expected


def test_missing_and_unjudged_queries() -> None:
    run = {"q1": {"a": 1.0}, "extra": {"a": 1.0}, "zero": {"a": 1.0}, "empty": {}}
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "zero": {"a": 0}, "empty": {"c": 1}}
    metrics = evaluate_run(run, qrels, accuracy_at=[1])
    assert metrics["queries"] == 1
    assert metrics["queries_without_run"] == 2  # q2, and "empty" which retrieved nothing
    assert metrics["run_queries_without_qrels"] == 2  # extra, and "zero" judged only 0
    for name in ("ndcg@10", "recall@10", "recall@100", "mrr@10", "accuracy@1"):
        assert metrics[name] == pytest.approx(1 / 3), name


def test_disjoint_query_ids_are_refused() -> None:
    with pytest.raises(InputError, match="no query id of the run appears in the qrels") as error:
        evaluate_run({"1": {"a": 1.0}}, {"PLAIN-1": {"a": 1}})
    assert "'1'" in str(error.value) and "'PLAIN-1'" in str(error.value)


@pytest.mark.parametrize("grade", [2**32, 2**62, 2**63, -(2**31), 1.5, True])
def test_grades_trec_eval_cannot_handle_are_refused_naming_the_judgement(grade: object) -> None:
    qrels = {"q1": {"d1": 1, "d2": grade}}
    with pytest.raises(InputError, match=r"qrels\['q1'\]\['d2'\].*from -2147483647 to 65535"):
        evaluate_run({"q1": {"d1": 2.0, "d2": 1.0}}, qrels)  # type: ignore[dict-item]


def test_bad_accuracy_cutoffs_are_refused() -> None:
    with pytest.raises(OdqaError, match="positive integers"):
        evaluate_run({"q": {"a": 1.0}}, {"q": {"a": 1}}, accuracy_at=[0])


# --- run files ---------------------------------------------------------------------------------


def test_write_orders_queries_and_documents(tmp_path: Path) -> None:
    run: Run = {"q2": {"x": 0.5}, "q10": {"b": 1.0, "c": 2.0, "a": 1.0}}
    path = tmp_path / "run.trec"
    write_trec_run(run, path, tag="bm25")
    assert path.read_text(encoding="utf-8").splitlines() == [
        "q10 Q0 c 1 2.0 bm25",
        "q10 Q0 a 2 1.0 bm25",
        "q10 Q0 b 3 1.0 bm25",
        "q2 Q0 x 1 0.5 bm25",
    ]
    assert read_trec_run(path) == run


@pytest.mark.parametrize("name", ["run.txt", "run.txt.gz"])
def test_round_trip_keeps_exact_scores(tmp_path: Path, name: str) -> None:
    run: Run = {"q": {"a": 0.1 + 0.2, "b": -1e-300, "c": 12345.678901234567}}
    write_trec_run(run, tmp_path / name)
    assert read_trec_run(tmp_path / name) == run


def test_write_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "run.trec"
    path.write_text("old\n", encoding="utf-8")
    write_trec_run({"q": {"a": 1.0}}, path)
    assert read_trec_run(path) == {"q": {"a": 1.0}}
    with pytest.raises(InputError, match="whitespace"):
        write_trec_run({"q": {"a b": 1.0}}, path)
    assert read_trec_run(path) == {"q": {"a": 1.0}}
    assert [p.name for p in tmp_path.iterdir()] == ["run.trec"]


def test_read_accepts_gzip_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "run.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write("q1 Q0 d1 1 3.5 x\n\nq1 0 d2 2 -2 x\n")
    assert read_trec_run(path) == {"q1": {"d1": 3.5, "d2": -2.0}}


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("q1 Q0 d2 2 1.0", "run.trec:2: expected 6 columns"),
        ("q1 Q0 d2 2 high tag", "run.trec:2: field 'score': score 'high'"),
        ("q1 Q0 d2 2 nan tag", "run.trec:2: field 'score'"),
        ("q1 Q0 d2 two 1.0 tag", "run.trec:2: field 'rank'"),
        ("q1 Q0 d1 2 1.0 tag", "run.trec:2: field 'docid': document 'd1' appears twice"),
    ],
)
def test_read_names_file_line_and_field(tmp_path: Path, line: str, where: str) -> None:
    path = tmp_path / "run.trec"
    path.write_text(f"q1 Q0 d1 1 2.0 tag\n{line}\n", encoding="utf-8")
    with pytest.raises(InputError) as error:
        read_trec_run(path)
    assert where in str(error.value)


def test_unreadable_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.trec"):
        read_trec_run(tmp_path / "missing.trec")
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    with pytest.raises(InputError, match=r"bad\.gz"):
        read_trec_run(tmp_path / "bad.gz")


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        ({"q 1": {"a": 1.0}}, "query id 'q 1' contains a space"),
        ({"q": {"a\tb": 1.0}}, "document id 'a\\tb' contains a tab"),
        ({"q": {"a\nb": 1.0}}, "document id 'a\\nb' contains a line break"),
        ({"q": {"": 1.0}}, "document id '' is empty"),
        ({"q": {"a\xa0b": 1.0}}, "contains whitespace ('\\xa0')"),
        ({"q": {"a": math.inf}}, "score inf is not finite"),
    ],
)
def test_write_refuses_what_a_run_cannot_hold_before_writing(
    tmp_path: Path, run: Run, expected: str
) -> None:
    path = tmp_path / "run.trec"
    with pytest.raises(InputError) as error:
        write_trec_run({"a": {"z": 1.0}, **run}, path)
    assert expected in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_write_to_a_folder_or_below_a_file_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(InputError, match=r"taken: cannot write the run file: is a folder"):
        write_trec_run({"q": {"a": 1.0}}, tmp_path / "taken")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=r"cannot write the run file"):
        write_trec_run({"q": {"a": 1.0}}, tmp_path / "file" / "run.trec")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "taken"]
    assert list((tmp_path / "taken").iterdir()) == []


def test_reader_rule_and_run_rule_agree(tmp_path: Path) -> None:
    """Every id the corpus readers accept, write_trec_run accepts; every id they refuse, it
    refuses: one rule (odqa.corpus.schema.id_problem)."""
    from odqa.corpus import read_documents

    for value in [
        "d1",
        "a:b-1",
        "é",
        "x\x00y",
        " a",
        "a b",
        "a\tb",
        "a\u2028b",
        "a\x1cb",
        "",
        "\x01",
        "a\ud800",
    ]:
        path = tmp_path / "docs.jsonl"
        path.write_text(json.dumps({"id": value, "text": "t"}) + "\n", encoding="utf-8")
        try:
            read = [doc.id for doc in read_documents(path)] == [value]
        except InputError:
            read = False
        try:
            write_trec_run({"q": {value: 1.0}}, tmp_path / "run.trec")
            written = read_trec_run(tmp_path / "run.trec") == {"q": {value: 1.0}}
        except InputError:
            written = False
        assert read == written, repr(value)


def test_read_names_folders_bad_bytes_and_nul(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder, expected a file"):
        read_trec_run(tmp_path)
    path = tmp_path / "run.trec"
    path.write_bytes(b"q1 Q0 d1 1 2.0 tag\nq1 Q0 d\xff 2 1.0 tag\n")
    with pytest.raises(InputError, match=r"run\.trec:2: not valid UTF-8"):
        read_trec_run(path)
    path.write_bytes(b"q1 Q0 d1 1 2.0 tag\x00\n")
    with pytest.raises(InputError, match=r"run\.trec:1: a NUL byte"):
        read_trec_run(path)


# --- judged queries ----------------------------------------------------------------------------


def test_judged_queries_messages_read_well() -> None:
    from odqa.corpus import Query
    from odqa.evaluate.retrieval import judged_queries

    queries = [Query(f"q{n}", "text") for n in range(5)]
    with pytest.raises(InputError) as error:
        judged_queries(queries, {"x": {"d": 1}}, "q.jsonl", "qrels.tsv")
    assert str(error.value) == (
        "q.jsonl: field 'id': none of its 5 query ids appears in qrels.tsv "
        "(query ids: 'q0', 'q1', 'q2' and 2 more; judged query ids: 'x')"
    )
    with pytest.raises(InputError, match=r"^q\.jsonl: holds no queries$"):
        judged_queries([], {"x": {"d": 1}}, "q.jsonl", "qrels.tsv")
    with pytest.raises(InputError, match=r"^qrels\.tsv: holds no judgements$"):
        judged_queries(queries, {}, "q.jsonl", "qrels.tsv")
    assert judged_queries(queries, {"q3": {"d": 1}}) == [queries[3]]
