"""``odqa tune`` and settings files: the study, the replay, the file's checks, ``--settings``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import json_lines, save_hand_set_reader, write_squad
from odqa.cli import app
from odqa.corpus import read_qrels, read_queries
from odqa.errors import InputError, OdqaError
from odqa.evaluate.retrieval import evaluate_index
from odqa.retrieve import Searcher
from odqa.retrieve.hybrid import HybridRetriever
from odqa.tune import read_settings
from odqa.tune.replay import Remembered
from odqa.tune.run import DevSet, tune
from odqa.tune.settings_file import FORMAT, TunedSettings, applied, write_settings

runner = CliRunner()
DEV = [
    ("q1", "lack of vitamin C", "d1"),
    ("q2", "too little vitamin D", "d2"),
    ("q3", "thiamine deficiency", "d3"),
    ("q4", "kinases and proteins", "d4"),
]
HELD_OUT = [("t1", "cell division cyclins", "d6"), ("t2", "deep blue ocean", "d5")]


def odqa(*args: object):
    return runner.invoke(app, [str(arg) for arg in args])


def write_dev(folder: Path, name: str, items=DEV) -> tuple[Path, Path]:
    """Queries (JSONL) and qrels (TSV) of ``items`` = (query id, text, relevant doc)."""
    queries = folder / f"{name}.jsonl"
    queries.write_text("".join(json.dumps({"id": q, "text": t}) + "\n" for q, t, _ in items))
    qrels = folder / f"{name}.tsv"
    rows = "".join(f"{q}\t{d}\t1\n" for q, _, d in items)
    qrels.write_text("query-id\tcorpus-id\tscore\n" + rows)
    return queries, qrels


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    folder = tmp_path_factory.mktemp("tune")
    docs = [
        ("d1", "Scurvy is caused by a lack of vitamin C."),
        ("d2", "Rickets comes from too little vitamin D."),
        ("d3", "Beriberi follows a deficiency of thiamine."),
        ("d4", "Kinases phosphorylate proteins in cells."),
        ("d5", "The ocean is deep and blue."),
        ("d6", "Cyclins control the cell division cycle."),
    ]
    corpus = folder / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in docs))
    target = folder / "idx"
    result = odqa("index", corpus, target, "--model", tiny_model, "--language", "en")
    assert result.exit_code == 0, result.output
    return target


def test_tuned_settings_score_on_the_dev_set_what_the_study_found(
    index_dir: Path, tmp_path: Path
) -> None:
    queries, qrels = write_dev(tmp_path, "dev")
    dev = DevSet(read_queries(queries), read_qrels(qrels), str(queries))
    settings, result = tune(index_dir, dev, trials=8, seed=0)
    assert result.best_value >= result.default_value
    assert len(result.values) == 8 and max(result.values) == result.best_value
    assert sorted(settings.dev_query_ids) == ["q1", "q2", "q3", "q4"]
    with Searcher(index_dir, applied(settings)) as searcher:  # replay == a real search
        again = evaluate_index(searcher, dev.queries, dev.qrels)["ndcg@10"]
    assert again == pytest.approx(result.best_value)
    with Searcher(index_dir) as searcher:
        default = evaluate_index(searcher, dev.queries, dev.qrels)["ndcg@10"]
    assert default == pytest.approx(result.default_value)


def test_the_same_seed_gives_the_same_settings(index_dir: Path, tmp_path: Path) -> None:
    queries, qrels = write_dev(tmp_path, "dev")
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    for out in outs:
        result = odqa(
            "tune", index_dir, "--queries", queries, "--qrels", qrels, "--trials", "5",
            "--seed", "3", "--out", out, "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    first, second = (json.loads(out.read_text()) for out in outs)
    assert first == second
    assert first["format"] == FORMAT and first["format_version"] == 1
    assert first["odqa_version"] and first["tuning"]["trials"] == 5
    summary = json.loads(result.output)
    assert summary["best"] >= summary["default"] and summary["trial_s"] > 0
    again = ["tune", index_dir, "--queries", queries, "--qrels", qrels, "--trials", "1",
             "--out", outs[0]]  # fmt: skip
    refused = odqa(*again)
    assert refused.exit_code == 2 and "already exists; pass --overwrite" in refused.output
    assert json.loads(outs[0].read_text()) == first  # untouched
    assert odqa(*again, "--overwrite").exit_code == 0
    assert json.loads(outs[0].read_text())["tuning"]["trials"] == 1


def test_remembered_lists_are_searched_once(index_dir: Path) -> None:
    with Searcher(index_dir) as searcher:

        class Counting:
            name = "bm25"
            calls = 0

            def search(self, queries, k, allowed=None):
                Counting.calls += 1
                return searcher.retriever("bm25").search(queries, k, allowed)

        remembered = Remembered(Counting())
        first = remembered.search(["vitamin C", "ocean"], 3)
        assert remembered.search(["ocean", "vitamin C"], 3) == first[::-1]
        assert Counting.calls == 1
        remembered.search(["ocean"], 4)  # another depth is another search
        assert Counting.calls == 2


def test_a_zero_weight_leaves_a_retriever_out(index_dir: Path) -> None:
    with Searcher(index_dir) as searcher:
        bm25 = searcher.retriever("bm25")
        dense = searcher.retriever("dense")
        fused = HybridRetriever([bm25, dense], "zscore", [0.0, 1.0])
        assert fused.retrievers == [dense]
        query = ["vitamin deficiency"]
        assert [h.row for h in fused.search(query, 4)[0]] == [
            h.row for h in dense.search(query, 100)[0][:4]
        ]
        with pytest.raises(OdqaError, match="all 0"):
            HybridRetriever([bm25, dense], "zscore", [0.0, 0.0])


def test_a_held_out_set_that_overlaps_the_dev_set_is_refused(
    index_dir: Path, tmp_path: Path
) -> None:
    queries, qrels = write_dev(tmp_path, "dev")
    overlapping, overlapping_qrels = write_dev(tmp_path, "test", [*HELD_OUT, DEV[0]])
    result = odqa(
        "tune", index_dir, "--queries", queries, "--qrels", qrels, "--trials", "2",
        "--eval-queries", overlapping, "--eval-qrels", overlapping_qrels,
        "--out", tmp_path / "best.json",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "also in the dev set" in result.output and "'q1'" in result.output
    assert not (tmp_path / "best.json").exists()


def test_eval_refuses_the_queries_the_settings_were_tuned_on(
    index_dir: Path, tmp_path: Path
) -> None:
    queries, qrels = write_dev(tmp_path, "dev")
    held, held_qrels = write_dev(tmp_path, "test", HELD_OUT)
    out = tmp_path / "best.json"
    result = odqa(
        "tune", index_dir, "--queries", queries, "--qrels", qrels, "--trials", "3",
        "--eval-queries", held, "--eval-qrels", held_qrels, "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "held out (2 queries)" in result.output
    refused = odqa("eval", index_dir, "--queries", queries, "--qrels", qrels, "--settings", out)
    assert refused.exit_code == 2
    assert str(out) in refused.output and "dev_query_ids" in refused.output
    allowed = odqa(
        "eval", index_dir, "--queries", held, "--qrels", held_qrels, "--settings", out, "--json"
    )
    assert allowed.exit_code == 0, allowed.output
    assert 0.0 <= json.loads(allowed.output)["ndcg@10"] <= 1.0


def test_a_dev_set_without_judged_queries_is_refused(index_dir: Path, tmp_path: Path) -> None:
    queries, _ = write_dev(tmp_path, "dev")
    _, other_qrels = write_dev(tmp_path, "other", HELD_OUT)
    result = odqa(
        "tune", index_dir, "--queries", queries, "--qrels", other_qrels,
        "--out", tmp_path / "best.json",
    )  # fmt: skip
    assert result.exit_code == 2
    assert str(queries) in result.output and "none of its 4 query ids" in result.output


def bad_file(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(content)
    return path


GOOD = {"format": FORMAT, "format_version": 1, "odqa_version": "0.1.0", "search": {}}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({**GOOD, "format_version": 2, "odqa_version": "9.0.0"}, "odqa 9.0.0 in settings format 2"),
        ({**GOOD, "colour": "blue"}, "field 'colour': unknown key"),
        ({**GOOD, "search": {"fusion": "rrf", "k1": 0.9}}, "field 'search.k1': unknown key"),
        ({**GOOD, "search": {"weights": [1, "x"]}}, "field 'search.weights'"),
        ({**GOOD, "reader_k": 0}, "field 'reader_k'"),
        ({"search": {}}, "not an odqa settings file"),
    ],
)
def test_bad_settings_files_name_the_file_and_the_key(
    tmp_path: Path, content: dict, expected: str
) -> None:
    path = bad_file(tmp_path, json.dumps(content))
    with pytest.raises(InputError, match=r"settings\.json") as caught:
        read_settings(path)
    assert expected in str(caught.value)


def test_malformed_settings_json_names_the_line(index_dir: Path, tmp_path: Path) -> None:
    path = bad_file(tmp_path, '{\n  "format": "odqa-settings",\n  oops\n}')
    result = odqa("search", index_dir, "vitamin", "--settings", path)
    assert result.exit_code == 2
    assert f"{path}:3: not valid JSON" in result.output
    assert "Traceback" not in result.output


def test_command_line_flags_override_the_settings_file(index_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "best.json"
    write_settings(path, TunedSettings(search={"retriever": "dense"}))

    def hits(*extra: object) -> list[str]:
        result = odqa("search", index_dir, "vitamin deficiency", "-k", "4", "--json", *extra)
        assert result.exit_code == 0, result.output
        return [(hit["doc_id"], hit["score"]) for hit in json_lines(result.output)]

    assert hits("--settings", path) == hits("--retriever", "dense")
    assert hits("--settings", path, "--retriever", "bm25") == hits("--retriever", "bm25")
    assert hits("--retriever", "dense") != hits("--retriever", "bm25")


def test_the_settings_file_merges_into_the_search_flags_knob_by_knob(tmp_path: Path) -> None:
    from odqa.cli.options import search_options
    from odqa.index.settings import PlaidSettings

    path = tmp_path / "best.json"
    write_settings(path, TunedSettings(search={"fusion": "rrf", "ncells": 2, "ndocs": None}))
    options = search_options(
        settings_file=path, ncells=4, ndocs=1024, centroid_score_threshold=0.5, device="cpu"
    )  # outside a command no flag counts as given: the file's values win where it has them
    assert options.fusion == "rrf" and options.device == "cpu"
    assert options.plaid == PlaidSettings(ncells=2, centroid_score_threshold=0.5, ndocs=None)


def test_ask_reads_the_settings_reader_k_unless_k_is_given(tmp_path: Path) -> None:
    squad = write_squad(tmp_path / "squad.json")
    index = tmp_path / "qa-idx"
    assert odqa("index", squad, index, "--retrievers", "bm25").exit_code == 0
    reader = save_hand_set_reader(tmp_path / "reader")
    path = tmp_path / "best.json"
    write_settings(path, TunedSettings(reader_k=1))

    def answer(*extra: object) -> str:  # the reader answers "vitamin C" wherever it is
        result = odqa(
            "ask", index, "What causes rickets?", "--reader-model", reader, "--json", *extra
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["text"]

    assert answer() == "vitamin C"  # 3 passages read: the scurvy one among them
    assert answer("--settings", path) == answer("-k", "1") != "vitamin C"
    assert answer("--settings", path, "-k", "3") == "vitamin C"


def test_tune_on_questions_picks_a_reader_k(tmp_path: Path) -> None:
    squad = write_squad(tmp_path / "squad.json")
    index = tmp_path / "qa-idx"
    assert odqa("index", squad, index, "--retrievers", "bm25").exit_code == 0
    reader = save_hand_set_reader(tmp_path / "reader")
    out = tmp_path / "best.json"
    result = odqa(
        "tune", index, "--questions", squad, "--reader-model", reader, "--top-k", "1,2",
        "--trials", "4", "--out", out, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["objective"] == "f1" and 0 <= summary["best"] <= 100
    assert read_settings(out).reader_k in (1, 2)


def test_the_default_trial_reads_odqas_default_k(tmp_path: Path) -> None:
    from odqa.read.answer import DEFAULT_K
    from odqa.read.factory import make_reader
    from odqa.tune.space import Space

    squad = write_squad(tmp_path / "squad.json")
    index = tmp_path / "qa-idx"
    assert odqa("index", squad, index, "--retrievers", "bm25").exit_code == 0
    reader = make_reader(model=str(save_hand_set_reader(tmp_path / "reader")))
    dev = DevSet(read_queries(squad), None, str(squad))
    _, result = tune(index, dev, trials=1, reader=reader, reader_ks=(1, 2, DEFAULT_K, 10))
    assert result.best_params["reader_k"] == DEFAULT_K  # one trial: the defaults
    nearest = {
        (1, 2, 10): 2,
        (DEFAULT_K + 1, 10): DEFAULT_K + 1,
        (DEFAULT_K - 1, DEFAULT_K + 1): DEFAULT_K - 1,
    }
    for ks, expected in nearest.items():
        assert Space(["bm25"], reader_ks=ks).default_params()["reader_k"] == expected


def test_missing_optuna_names_the_extra(
    index_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries, qrels = write_dev(tmp_path, "dev")
    monkeypatch.setitem(sys.modules, "optuna", None)  # what an absent package looks like
    result = odqa(
        "tune", index_dir, "--queries", queries, "--qrels", qrels, "--out", tmp_path / "b.json"
    )
    assert result.exit_code == 2
    assert "odqa[tune]" in result.output


@pytest.mark.slow
@pytest.mark.parametrize(
    "params",
    [
        {"retrievers": "bm25,colbert", "fusion": "rrf", "weight_bm25": 0.3,
         "weight_colbert": 0.9, "ncells": 2, "centroid_score_threshold": 0.4, "ndocs": 256},
        {"retrievers": "colbert", "ncells": None, "centroid_score_threshold": 0.5, "ndocs": 1024},
    ],
)  # fmt: skip
def test_a_plaid_candidate_replays_what_its_settings_search(
    tmp_path: Path, small_corpus: Path, tiny_model: Path, params: dict
) -> None:
    import optuna

    from odqa.corpus import ChunkSpec
    from odqa.index import build_index
    from odqa.tune.scoring import Replayer, RetrievalScore
    from odqa.tune.space import Space

    index = build_index(
        small_corpus, tmp_path / "idx", retrievers=["bm25", "colbert"], model=str(tiny_model),
        language="en", chunk=ChunkSpec(tokens=32, overlap=8),
    )  # fmt: skip
    queries, qrels = write_dev(tmp_path, "dev")
    dev_queries, judgements = read_queries(queries), read_qrels(qrels)
    space = Space(["bm25", "colbert"])
    candidate = space.suggest(optuna.trial.FixedTrial(params))
    settings = TunedSettings(search=candidate.search_settings(space.retrievers))
    assert settings.search["ndocs"] == params["ndocs"]
    with Searcher(index) as searcher:
        replayer = Replayer(searcher)
        replayed = RetrievalScore(replayer, dev_queries, judgements)(candidate)
        replayer.close()
    with Searcher(index, applied(settings)) as searcher:
        searched = evaluate_index(searcher, dev_queries, judgements)["ndcg@10"]
    assert replayed == pytest.approx(searched)


def test_judged_queries_outside_the_dev_set_do_not_count(index_dir: Path, tmp_path: Path) -> None:
    queries, qrels = write_dev(tmp_path, "dev")  # four judged queries, two of them tuned on
    dev = DevSet(read_queries(queries)[:2], read_qrels(qrels), str(queries))
    _, result = tune(index_dir, dev, trials=1)
    kept = {qid: docs for qid, docs in dev.qrels.items() if qid in ("q1", "q2")}
    with Searcher(index_dir) as searcher:
        alone = evaluate_index(searcher, dev.queries, kept)["ndcg@10"]
    assert result.default_value == pytest.approx(alone) and alone > 0


def test_eval_qa_refuses_questions_the_settings_were_tuned_on(tmp_path: Path) -> None:
    squad = write_squad(tmp_path / "squad.json")  # questions q0, q1, q2
    index = tmp_path / "qa-idx"
    assert odqa("index", squad, index, "--retrievers", "bm25").exit_code == 0
    reader = save_hand_set_reader(tmp_path / "reader")
    path = tmp_path / "best.json"
    write_settings(path, TunedSettings(dev_query_ids=("q1", "other")))
    result = odqa(
        "eval-qa", index, "--questions", squad, "--reader-model", reader, "--settings", path
    )
    assert result.exit_code == 2
    assert "1 evaluation queries" in result.output and "'q1'" in result.output
