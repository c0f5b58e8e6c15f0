"""Atomic writes, the directory swap and its recovery, writer locks, and what --overwrite
may replace."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import odqa
from helpers import listing
from odqa import fs
from odqa.corpus import ChunkSpec


def bm25_index(corpus: Path, target: Path, **settings) -> Path:
    chunk = ChunkSpec(tokens=32, overlap=8)
    return odqa.build_index(corpus, target, retrievers=["bm25"], chunk=chunk, **settings)


def test_atomic_file_leaves_the_old_content_when_the_writer_fails(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    fs.write_text(path, "old")
    with pytest.raises(KeyboardInterrupt), fs.atomic_file(path) as partial:
        partial.write_text("half")
        raise KeyboardInterrupt
    assert path.read_text() == "old" and listing(tmp_path) == ["a.txt"]


def test_the_swap_exchanges_both_names_in_one_step(tmp_path: Path) -> None:
    target, staging = tmp_path / "idx", tmp_path / ".idx.partial-1"
    for folder, text in ((target, "old"), (staging, "new")):
        folder.mkdir()
        (folder / "x").write_text(text)
    if not fs.exchange(staging, target):
        pytest.skip("this file system cannot exchange names (renameat2)")
    fs.exchange(staging, target)  # back
    fs.replace_directory(staging, target)
    assert (target / "x").read_text() == "new" and listing(tmp_path) == ["idx"]


def test_a_swap_cut_between_two_renames_is_undone_on_open(
    tmp_path: Path, small_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = bm25_index(small_corpus, tmp_path / "idx")
    monkeypatch.setattr(fs, "exchange", lambda first, second: False)  # the two-rename path
    real_rename = os.rename

    def killed_after_first(source, target) -> None:
        real_rename(source, target)
        if ".old-" in str(target):
            raise KeyboardInterrupt  # killed between the renames

    monkeypatch.setattr(fs.os, "rename", killed_after_first)
    with pytest.raises(KeyboardInterrupt):
        odqa.add_documents(index, [odqa.Document("n1", "Pellagra follows a lack of niacin.")])
    monkeypatch.setattr(fs.os, "rename", real_rename)
    assert not index.exists()  # the window the swap had
    manifest = odqa.Manifest.read(index)  # opening puts the old index back
    assert manifest.counts["documents"] == 6
    assert odqa.Searcher(index).search(["vitamin C"], 1)[0][0].doc_id == "d1"


def test_a_reader_inside_the_two_rename_window_waits_for_the_writer(
    tmp_path: Path, small_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = bm25_index(small_corpus, tmp_path / "idx")
    monkeypatch.setattr(fs, "exchange", lambda first, second: False)  # the two-rename path
    real_rename = os.rename
    seen: list[object] = []

    def read_index() -> None:
        try:
            seen.append(odqa.Manifest.read(index).counts["documents"])
        except Exception as exc:  # what the reader met is the finding
            seen.append(exc)

    def reader_in_the_window(source, target) -> None:
        real_rename(source, target)
        if ".old-" in str(target):  # the old index is aside, the new one not yet in place
            reader = threading.Thread(target=read_index)
            reader.start()
            reader.join(0.5)  # the reader has looked at the empty path by now

    monkeypatch.setattr(fs.os, "rename", reader_in_the_window)
    odqa.add_documents(index, [odqa.Document("n1", "Pellagra follows a lack of niacin.")])
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen == [7]  # it waited, then read the new index
    assert odqa.Manifest.read(index).counts["documents"] == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "idx"]


def test_a_failed_first_build_leaves_nothing_beside_the_target(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "a", "text": "fine"}\n{"id": "a", "text": "again"}\n')
    with pytest.raises(odqa.OdqaError, match="duplicate"):
        bm25_index(corpus, tmp_path / "idx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl"]


def test_a_writer_lock_removed_by_its_last_holder_is_never_held_twice(tmp_path: Path) -> None:
    target = tmp_path / "idx"
    inside: list[int] = []
    overlaps: list[int] = []

    def write(number: int) -> None:
        for _ in range(30):
            with fs.writer_lock(target):
                if inside:
                    overlaps.append(number)
                inside.append(number)
                time.sleep(0.001)
                inside.remove(number)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert overlaps == []
    assert list(tmp_path.iterdir()) == []


def test_two_writers_at_once_lose_nothing(tmp_path: Path, small_corpus: Path) -> None:
    index = bm25_index(small_corpus, tmp_path / "idx")
    script = (
        "import sys, odqa\n"
        "prefix = sys.argv[2]\n"
        "docs = [odqa.Document(f'{prefix}{i}', 'alpha beta') for i in range(20)]\n"
        "odqa.add_documents(sys.argv[1], docs)\n"
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(index), prefix], stderr=subprocess.PIPE)
        for prefix in ("a", "b")
    ]
    for writer in writers:
        assert writer.wait(300) == 0, writer.stderr.read().decode()
    manifest = odqa.Manifest.read(index)
    assert manifest.counts["documents"] == 6 + 40
    with odqa.Searcher(index) as searcher:
        ids = set(searcher.collection.doc_ids)
    assert {f"{p}{i}" for p in "ab" for i in range(20)} <= ids
    assert listing(tmp_path) == ["corpus.jsonl", "idx"]


def test_overwrite_replaces_only_an_index_or_an_empty_folder(
    tmp_path: Path, small_corpus: Path
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("x")
    with pytest.raises(odqa.OdqaError, match=r"holds 1 entries \(thesis.tex\)"):
        bm25_index(small_corpus, notes, overwrite=True)
    assert (notes / "thesis.tex").read_text() == "x"
    plain = tmp_path / "plain.txt"
    plain.write_text("keep")
    with pytest.raises(odqa.OdqaError, match="is a file, not an odqa index"):
        bm25_index(small_corpus, plain, overwrite=True)
    assert plain.read_text() == "keep"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert odqa.Manifest.read(bm25_index(small_corpus, empty, overwrite=True))
    again = bm25_index(small_corpus, empty, overwrite=True)  # an index: replaced
    assert odqa.Manifest.read(again).counts["documents"] == 6


def test_the_next_run_removes_what_killed_runs_left_and_says_so(
    tmp_path: Path, small_corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = bm25_index(small_corpus, tmp_path / "idx")
    for name in (".idx.partial-0a1b", ".idx.old-2c3d", ".idx.building-legacy"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "passages.npy").write_bytes(b"half")
    with caplog.at_level("WARNING", logger="odqa"):
        odqa.add_documents(index, [odqa.Document("n1", "Pellagra follows a lack of niacin.")])
    assert listing(tmp_path) == ["corpus.jsonl", "idx"]
    assert "removed 3 leftover(s) of interrupted runs" in caplog.text
    assert odqa.Manifest.read(index).counts["documents"] == 7
    (tmp_path / ".idx.partial-4e5f").mkdir()
    bm25_index(small_corpus, index, overwrite=True)
    assert listing(tmp_path) == ["corpus.jsonl", "idx"]


def test_opening_an_index_says_what_a_killed_run_left_beside_it(
    tmp_path: Path, small_corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A killed 1M ColBERT build leaves gigabytes hidden beside the index until the next
    write: opening it to search says so; a live writer's staging is not called a leftover."""
    index = bm25_index(small_corpus, tmp_path / "idx")
    (tmp_path / ".idx.partial-0a1b").mkdir()
    (tmp_path / ".idx.partial-0a1b" / "residuals.npy").write_bytes(b"x" * (3 << 20))
    with caplog.at_level("WARNING", logger="odqa"):
        odqa.Searcher(index)
    assert "1 leftover(s) of interrupted runs (3 MiB) beside" in caplog.text
    assert ".idx.partial-0a1b" in caplog.text
    caplog.clear()
    with fs.writer_lock(index), caplog.at_level("WARNING", logger="odqa"):
        odqa.Searcher(index)
    assert "leftover" not in caplog.text


def test_a_leftover_removed_while_it_is_measured_does_not_fail_the_open(
    tmp_path: Path, small_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build starting beside a reader removes the leftovers the reader is measuring."""
    index = bm25_index(small_corpus, tmp_path / "idx")
    partial = tmp_path / ".idx.partial-0a1b"
    partial.mkdir()
    (partial / "codes.npy").write_bytes(b"x")
    real_is_file = Path.is_file

    def removed_once_seen(self: Path) -> bool:
        seen = real_is_file(self)
        if seen and partial in self.parents:
            self.unlink()  # gone between the check and the measure
        return seen

    monkeypatch.setattr(Path, "is_file", removed_once_seen)
    assert odqa.Searcher(index).search(["vitamin"], k=1)
