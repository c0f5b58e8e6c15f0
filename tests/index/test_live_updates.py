"""A live collection: additions and deletions cost what they change (nothing of the index is
rewritten, only what they write is hashed), and after many of them an index finds what a
build of its final collection finds, with the same scores."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

import odqa
import odqa.index.manifest as manifest_module
from odqa.cli import app
from odqa.corpus import ChunkSpec, Document
from odqa.errors import DuplicateIdError, InputError
from odqa.index.check import check_index

WORDS = (
    "vitamin",
    "scurvy",
    "protein",
    "kinase",
    "cell",
    "division",
    "cycle",
    "ocean",
    "deep",
    "blue",
    "niacin",
    "pellagra",
    "thiamine",
    "beriberi",
    "gene",
    "expression",
    "mouse",
    "model",
    "binding",
    "receptor",
    "signal",
    "pathway",
)
QUERIES = [
    "vitamin scurvy",
    "cell division cycle",
    "protein kinase signal",
    "deep blue ocean",
    "gene expression in mouse model",
    "niacin pellagra",
]
SETTINGS = {
    "retrievers": ["bm25", "dense"],
    "language": "en",
    "chunk": ChunkSpec(tokens=32, overlap=8),
    "precision": "fp32",
}


def document(number: int, rng: random.Random) -> Document:
    words = " ".join(rng.choices(WORDS, k=rng.randint(5, 60)))
    return Document(f"d{number}", words, f"Title {number % 7}", {"year": 2000 + number % 5})


def write(path: Path, documents: list[Document]) -> Path:
    lines = [
        json.dumps({"id": d.id, "title": d.title, "text": d.text, "metadata": d.metadata})
        for d in documents
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def top(index: Path, retriever: str, where: dict | None = None) -> list[list[tuple[str, float]]]:
    with odqa.Searcher(index, precision="fp32") as searcher:
        hits = searcher.search(QUERIES, 10, retriever=retriever, where=where)
    return [[(hit.doc_id, hit.score) for hit in query_hits] for query_hits in hits]


def assert_same_results(ours: Path, rebuilt: Path) -> None:
    for retriever, where in (
        ("bm25", None),
        ("dense", None),
        ("hybrid", None),
        ("bm25", {"year": 2002}),
    ):
        mine, theirs = top(ours, retriever, where), top(rebuilt, retriever, where)
        for got, wanted in zip(mine, theirs, strict=True):
            assert [doc for doc, _ in got] == [doc for doc, _ in wanted], (retriever, where)
            for (_, score), (_, expected) in zip(got, wanted, strict=True):
                assert score == pytest.approx(expected, abs=1e-4), (retriever, where)


def test_ten_rounds_of_adds_and_deletes_find_what_a_rebuild_finds(
    tmp_path: Path, tiny_model: Path
) -> None:
    rng = random.Random(7)
    live = {number: document(number, rng) for number in range(60)}
    index = odqa.build_index(
        write(tmp_path / "start.jsonl", list(live.values())),
        tmp_path / "live",
        model=str(tiny_model),
        **SETTINGS,
    )
    reports = []
    next_number = 60
    for _ in range(10):
        added = [document(next_number + i, rng) for i in range(6)]
        next_number += 6
        reports.append(odqa.add_documents(index, added, precision="fp32"))
        live |= {int(d.id[1:]): d for d in added}
        gone = rng.sample(sorted(live), 8)
        reports.append(odqa.delete_documents(index, [f"d{number}" for number in gone]))
        for number in gone:
            del live[number]
    assert any("bm25_merged_segments" in report for report in reports)  # more than 8 additions
    assert any("dense_merged_segments" in report for report in reports)
    assert any("bm25_rewritten_segments" in report for report in reports)  # > 20 % deleted
    final = [live[number] for number in sorted(live)]
    rebuilt = odqa.build_index(
        write(tmp_path / "final.jsonl", final),
        tmp_path / "rebuilt",
        model=str(tiny_model),
        **SETTINGS,
    )
    assert odqa.Manifest.read(index).counts["documents"] == len(final)
    assert_same_results(index, rebuilt)
    report = odqa.compact_index(index)
    assert report["bm25_segments_merged"] >= 1
    assert_same_results(index, rebuilt)
    assert check_index(index).ok, check_index(index).problems


def test_an_addition_rewrites_nothing_of_the_index_and_hashes_only_what_it_wrote(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(3)
    index = odqa.build_index(
        write(tmp_path / "c.jsonl", [document(n, rng) for n in range(40)]),
        tmp_path / "idx",
        model=str(tiny_model),
        **SETTINGS,
    )
    before = {p.relative_to(index): p.stat().st_ino for p in index.rglob("*") if p.is_file()}
    hashed: list[str] = []
    real = manifest_module.sha256_file

    def counted(path: Path) -> str:  # in the update's copy, a sibling of the index
        hashed.append(str(Path(*Path(path).relative_to(tmp_path).parts[1:])))
        return real(path)

    monkeypatch.setattr(manifest_module, "sha256_file", counted)
    odqa.add_documents(index, [document(100, rng), document(101, rng)], precision="fp32")
    after = {p.relative_to(index): p.stat().st_ino for p in index.rglob("*") if p.is_file()}
    changed = sorted(str(name) for name, inode in before.items() if after.get(name) != inode)
    assert changed == ["manifest.json"]
    new = sorted(str(name) for name in after if name not in before)
    assert new and all(
        name.startswith(("segments/", "bm25/segments/", "dense/segments/")) for name in new
    )
    assert sorted(hashed) == sorted(new)
    assert check_index(index).ok


def test_ids_already_live_are_refused_or_replaced(tmp_path: Path, tiny_model: Path) -> None:
    rng = random.Random(5)
    index = odqa.build_index(
        write(tmp_path / "c.jsonl", [document(n, rng) for n in range(10)]),
        tmp_path / "idx",
        model=str(tiny_model),
        **SETTINGS,
    )
    replacement = Document("d3", "niacin pellagra niacin pellagra", "New three")
    with pytest.raises(DuplicateIdError, match="'d3' is already in the index"):
        odqa.add_documents(index, [replacement])
    report = odqa.add_documents(index, [replacement], upsert=True, precision="fp32")
    assert report["replaced_documents"] == 1 and report["added_documents"] == 1
    assert odqa.Manifest.read(index).counts["documents"] == 10
    hits = top(index, "bm25")[QUERIES.index("niacin pellagra")]
    assert hits[0][0] == "d3"
    with odqa.Searcher(index) as searcher:
        titles = {
            hit.passage.title
            for hit in searcher.search(["niacin pellagra"], 10, retriever="bm25")[0]
            if hit.doc_id == "d3"
        }
    assert titles == {"New three"}
    with pytest.raises(InputError, match="no live document with id 'nope'"):
        odqa.delete_documents(index, ["d1", "nope"])
    report = odqa.delete_documents(index, ["d1", "nope"], missing_ok=True)
    assert report["deleted_documents"] == 1 and report["unknown_ids"] == 1


def test_the_add_delete_and_compact_commands(tmp_path: Path, tiny_model: Path) -> None:
    runner = CliRunner()
    rng = random.Random(9)
    corpus = write(tmp_path / "c.jsonl", [document(n, rng) for n in range(10)])
    index = tmp_path / "idx"
    built = runner.invoke(
        app,
        ["index", str(corpus), str(index), "--retrievers", "bm25,dense", "--model", str(tiny_model),
         "--chunk-tokens", "32", "--chunk-overlap", "8"],
    )  # fmt: skip
    assert built.exit_code == 0, built.output
    week = write(tmp_path / "week.jsonl", [document(n, rng) for n in range(20, 25)])
    for command in ("add", "delete", "compact"):
        help_text = runner.invoke(app, [command, "--help"]).output
        assert "Example" in help_text, command
    added = runner.invoke(app, ["add", str(index), str(week)])
    assert added.exit_code == 0 and "added_documents=5" in added.output, added.output
    again = runner.invoke(app, ["add", str(index), str(week)])
    assert again.exit_code == 2 and "already in the index" in again.output
    assert runner.invoke(app, ["add", str(index), str(week), "--upsert"]).exit_code == 0
    ids = tmp_path / "retracted.txt"
    ids.write_text("d20\nd21\n\nunknown-1\n", encoding="utf-8")
    deleted = runner.invoke(app, ["delete", str(index), "d2", "--ids", str(ids)])
    assert deleted.exit_code == 0, deleted.output
    assert (
        "deleted_documents=3" in deleted.output
        and "1 of the 4 ids were not in the index" in deleted.output
    )
    none = runner.invoke(app, ["delete", str(index), "unknown-2"])
    assert none.exit_code == 1 and "nothing was deleted" in none.output
    compacted = runner.invoke(app, ["compact", str(index)])
    assert compacted.exit_code == 0 and "bm25_segments_merged" in compacted.output
    assert odqa.Manifest.read(index).counts["documents"] == 10 + 5 - 3
