"""A damaged index is refused when it is opened, in one line naming the path and the way out;
``odqa info --check`` compares every file with the inventory the manifest records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import odqa
from odqa.cli import app
from odqa.errors import IndexFormatError
from odqa.index.check import check_index
from odqa.index.manifest import FORMAT_VERSION, MANIFEST_NAME, Manifest, inventory, sha256_file
from odqa.retrieve import Searcher

runner = CliRunner()


def odqa_cli(*args: object):
    return runner.invoke(app, [str(arg) for arg in args])


def assert_one_clean_error(result, *fragments: str) -> str:
    """Exit 2, no traceback, one ``error:`` line holding every fragment; returns that line."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    """A BM25 + dense index of six documents, built once and copied for each test."""
    folder = tmp_path_factory.mktemp("built")
    corpus = folder / "corpus.jsonl"
    texts = ["vitamin C prevents scurvy", "vitamin D and rickets", "thiamine and beriberi"]
    corpus.write_text(
        "".join(
            json.dumps({"id": f"d{i}", "title": "", "text": t}) + "\n" for i, t in enumerate(texts)
        ),
        encoding="utf-8",
    )
    return odqa.build_index(
        corpus, folder / "idx", retrievers=["bm25", "dense"], model=str(tiny_model), language="en"
    )


@pytest.fixture()
def index(built: Path, tmp_path: Path) -> Path:
    target = tmp_path / "idx"
    shutil.copytree(built, target)
    return target


def opening_refused(index: Path, *fragments: str) -> str:
    with pytest.raises(IndexFormatError) as caught:
        Searcher(index)
    message = str(caught.value)
    assert message.startswith(f"{index}: damaged index: ") and "\n" not in message
    assert "--overwrite" in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_build_records_every_file_with_its_size_and_sha256(index: Path) -> None:
    manifest = Manifest.read(index)
    assert manifest.format_version == FORMAT_VERSION == 3
    on_disk = sorted(p.relative_to(index).as_posix() for p in index.rglob("*") if p.is_file())
    assert sorted(manifest.files) == [name for name in on_disk if name != MANIFEST_NAME]
    assert {"documents.jsonl", "passages.npy", "dense/dense.faiss"} <= set(manifest.files)
    for name, entry in manifest.files.items():
        assert entry["size"] == (index / name).stat().st_size
        assert entry["sha256"] == sha256_file(index / name)
    assert check_index(index).ok
    result = odqa_cli("info", index, "--check")
    assert result.exit_code == 0, result.output
    assert f"check: {len(manifest.files)} files match the manifest" in result.output


@pytest.mark.parametrize("folder", ["bm25", "dense"])
def test_a_deleted_retriever_folder_is_refused_at_open(index: Path, folder: str) -> None:
    shutil.rmtree(index / folder)
    message = opening_refused(index, f"{folder}/ is missing")
    assert message.count("is missing") == 1  # the folder once, not each of its files
    assert "--retrievers bm25,dense --overwrite" in message
    result = odqa_cli("search", index, "vitamin", "-r", "bm25")
    assert_one_clean_error(result, str(index), f"{folder}/ is missing", "odqa index")


def test_a_retriever_the_manifest_lists_without_its_folder(index: Path) -> None:
    data = json.loads((index / MANIFEST_NAME).read_text())
    data["retrievers"]["colbert"] = {"model": "x"}
    (index / MANIFEST_NAME).write_text(json.dumps(data))
    opening_refused(index, "colbert/ is missing (the manifest lists its retriever)")


def test_a_truncated_collection_is_refused_and_eval_notices(index: Path, tmp_path: Path) -> None:
    documents = index / "documents.jsonl"
    size = documents.stat().st_size
    with documents.open("r+b") as handle:
        handle.truncate(size - 10)
    opening_refused(index, f"documents.jsonl has {size - 10:,} bytes", f"recorded {size:,}")
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"_id": "q1", "text": "vitamin"}\n', encoding="utf-8")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td0\t1\n", encoding="utf-8")
    result = odqa_cli("eval", index, "--queries", queries, "--qrels", qrels, "-r", "bm25")
    assert_one_clean_error(result, "documents.jsonl has")


@pytest.mark.parametrize(
    "name", ["passages.npy", "documents.offsets.npy", "doc_ids.txt", "doc_ids.offsets.npy"]
)
@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_missing_or_truncated_collection_arrays(index: Path, name: str, damage: str) -> None:
    path = index / name
    if damage == "missing":
        path.unlink()
        opening_refused(index, f"{name} is missing")
    else:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        opening_refused(index, name, "bytes, the manifest recorded")


def test_an_index_without_inventory_checks_itself(index: Path) -> None:
    """Manifests written before the inventory still open; the collection checks itself."""
    data = json.loads((index / MANIFEST_NAME).read_text())
    del data["files"]
    (index / MANIFEST_NAME).write_text(json.dumps(data))
    with Searcher(index) as searcher:
        assert searcher.search(["vitamin"], k=1, retriever="bm25")[0]
    result = odqa_cli("info", index, "--check")
    assert result.exit_code == 0, result.output
    assert "note: the manifest records no file inventory" in result.output
    np.save(index / "passages.npy", np.zeros((2, 3), np.int64))
    opening_refused(index, "passages.npy has shape (2, 3)")
    shutil.rmtree(index / "dense")
    opening_refused(index, "dense/ is missing")


def test_legacy_truncated_documents_are_refused_by_the_offsets(index: Path) -> None:
    data = json.loads((index / MANIFEST_NAME).read_text())
    del data["files"]
    (index / MANIFEST_NAME).write_text(json.dumps(data))
    documents = index / "documents.jsonl"
    documents.write_bytes(documents.read_bytes()[:-5])
    opening_refused(index, "documents.jsonl has", "its offsets end at")


def test_same_size_alterations_are_found_by_check(index: Path) -> None:
    documents = index / "documents.jsonl"
    text = documents.read_bytes()
    documents.write_bytes(text.replace(b"scurvy", b"scurfy"))
    with Searcher(index):  # the open check costs a stat: sizes only
        pass
    result = odqa_cli("info", index, "--check")
    assert result.exit_code == 2, result.output
    assert "damaged: documents.jsonl: sha256" in result.output
    assert_one_clean_error(result, str(index), "1 problem listed above", "--overwrite")
    result = odqa_cli("info", index, "--check", "--json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)["check"]
    assert not report["ok"] and report["problems"][0].startswith("documents.jsonl: sha256")


def test_an_unreadable_document_line_is_a_clean_error(index: Path) -> None:
    documents = index / "documents.jsonl"
    documents.write_bytes(documents.read_bytes().replace(b'{"id": "d0"', b'{"id"; "d0"'))
    data = json.loads((index / MANIFEST_NAME).read_text())
    data["files"] = inventory(index)  # as if the damage had been recorded: only reading finds it
    (index / MANIFEST_NAME).write_text(json.dumps(data))
    result = odqa_cli("search", index, "vitamin C", "-r", "bm25")
    assert_one_clean_error(result, "documents.jsonl:1", "--overwrite")
    result = odqa_cli("info", index, "--check")
    assert result.exit_code == 2
    assert "damaged: documents.jsonl: line 1 not the document stored there" in result.output


def test_check_names_files_the_inventory_does_not_list(index: Path) -> None:
    (index / "bm25" / "stray.txt").write_text("x")
    (index / "dense" / "dense.faiss").unlink()
    result = odqa_cli("info", index, "--check")
    assert result.exit_code == 2
    assert "damaged: bm25/stray.txt: not in the manifest's inventory" in result.output
    assert "damaged: dense/dense.faiss: missing" in result.output
    result = odqa_cli("info", index)  # without --check: what opening finds
    assert result.exit_code == 2 and "damaged: dense/dense.faiss is missing" in result.output


def test_updates_keep_the_inventory_current(index: Path, tiny_model: Path) -> None:
    odqa.add_documents(index, [odqa.Document("d9", "", "cobalamin and anaemia")])
    assert check_index(index).ok
    odqa.delete_documents(index, ["d1"])
    report = check_index(index)
    assert report.ok, report.problems
    assert report.checksums == len(Manifest.read(index).files)


def test_a_hand_edited_inventory_is_a_clean_error(index: Path) -> None:
    data = json.loads((index / MANIFEST_NAME).read_text())
    data["files"] = {"documents.jsonl": "big"}
    (index / MANIFEST_NAME).write_text(json.dumps(data))
    assert_one_clean_error(odqa_cli("info", index), "field 'files' is not an inventory")
