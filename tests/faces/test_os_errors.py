"""System errors while writing (disk full, read-only or forbidden folder), a damaged reader,
and a progress bar on screen: each one clean line on stderr, exit 2, nothing half-written.

The file system's failures are simulated by monkeypatching: below a chosen folder, files
opened for writing fail as a full disk does (``write`` raises ENOSPC once a byte budget is
spent) or as a read-only one does (opening, creating, renaming and linking raise EROFS).
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import typer
from tqdm import tqdm
from typer.testing import CliRunner

import odqa
from helpers import listing, save_hand_set_reader
from odqa.cli import app
from odqa.cli.errors import user_errors
from odqa.errors import OdqaError
from odqa.index.check import check_index

runner = CliRunner()
WRITE_MODES = set("wax+")


def odqa_cli(*args: object):
    return runner.invoke(app, [str(arg) for arg in args])


def error_line(result, *fragments: str) -> str:
    """Exit 2, no traceback, exactly one line of stderr starting ``error: `` and holding
    every fragment; returns that line."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.split("\n") if "error:" in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), repr(lines[0])  # on a line of its own
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def under(path: object, root: Path) -> bool:
    try:
        return Path(os.fspath(path)).resolve().is_relative_to(root)
    except TypeError:  # a file descriptor
        return False


class FullDiskFile:
    """A file whose writes fail with ENOSPC once the disk's budget is spent."""

    def __init__(self, handle, disk: FullDisk) -> None:
        self._handle = handle
        self._disk = disk

    def write(self, data) -> int:
        self._disk.spend(len(data))
        return self._handle.write(data)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __enter__(self) -> FullDiskFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._handle.close()

    def __iter__(self):
        return iter(self._handle)

    def __getattr__(self, name: str):
        return getattr(self._handle, name)


class FullDisk:
    """Below ``root``, ``budget`` bytes can be written, then every write raises ENOSPC with
    no file name (as ``write(2)`` does)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path, budget: int) -> None:
        self.root = root.resolve()
        self.left = budget
        real_open = builtins.open

        def fake_open(file, mode="r", *args, **kwargs):
            handle = real_open(file, mode, *args, **kwargs)
            if WRITE_MODES & set(mode) and under(file, self.root):
                return FullDiskFile(handle, self)
            return handle

        monkeypatch.setattr(builtins, "open", fake_open)
        monkeypatch.setattr(io, "open", fake_open)

    def spend(self, size: int) -> None:
        if size > self.left:
            self.left = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.left -= size


def read_only(monkeypatch: pytest.MonkeyPatch, root: Path, code: int = errno.EROFS) -> None:
    """Below ``root`` nothing can be created, opened for writing, renamed, linked or removed:
    each raises ``code`` (EROFS, or EACCES for a folder the user may not write) naming the
    path, as the system does."""
    root = root.resolve()
    real_open, real_mkdir = builtins.open, os.mkdir

    def refuse(path: object) -> None:
        raise OSError(code, os.strerror(code), os.fspath(path))

    def fake_open(file, mode="r", *args, **kwargs):
        if WRITE_MODES & set(mode) and under(file, root):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if under(path, root) and not os.path.exists(path):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def refusing(real):
        def fake(first, *args, **kwargs):
            if under(first, root):
                refuse(first)
            return real(first, *args, **kwargs)

        return fake

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    for name in ("rename", "replace", "link", "unlink", "rmdir"):
        monkeypatch.setattr(os, name, refusing(getattr(os, name)))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of ``folder`` and its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    texts = ["vitamin C prevents scurvy", "vitamin D and rickets", "thiamine and beriberi"]
    path = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"id": f"d{i}", "title": "", "text": t}) for i, t in enumerate(texts)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def out(tmp_path: Path) -> Path:
    """The folder the indexes go in (the simulated file system's root)."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def build(corpus: Path, target: Path, model: Path, *more: str):
    return odqa_cli(
        "index", corpus, target, "--model", model, "--language", "en", "--retrievers", *more
    )


@pytest.mark.parametrize("budget", [0, 300, 1_500])
def test_disk_full_during_index_leaves_the_old_index(
    corpus: Path, out: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    target = out / "idx"
    assert build(corpus, target, tiny_model, "bm25,dense").exit_code == 0
    before = snapshot(target)
    FullDisk(monkeypatch, out, budget)
    result = build(corpus, target, tiny_model, "bm25,dense", "--overwrite")
    error_line(result, str(target.resolve()), "no space left on device", "free some space")
    monkeypatch.undo()
    assert snapshot(target) == before
    assert listing(out) == ["idx"]  # no staging folder left
    assert check_index(target).ok


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_disk_full_while_bm25_postings_spill_leaves_the_old_index(
    tmp_path: Path, out: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, fraction: float
) -> None:
    """A build large enough to spill its postings to disk, the disk full at a fraction of what
    it writes: in the spill files, the scored matrix or the collection."""
    import odqa.index.bm25_store as bm25

    monkeypatch.setattr(bm25, "SPILL_POSTINGS", 200)
    corpus = tmp_path / "many.jsonl"
    lines = [
        json.dumps({"id": f"d{i}", "text": f"w{i % 37} w{i % 11} w{i} common"}) for i in range(800)
    ]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = out / "idx"
    assert build(corpus, target, tiny_model, "bm25").exit_code == 0
    before = snapshot(target)
    written = sum(len(data) for data in before.values()) + 800 * 3 * 12  # with the spill files
    FullDisk(monkeypatch, out, int(written * fraction))
    result = build(corpus, target, tiny_model, "bm25", "--overwrite")
    error_line(result, str(target.resolve()), "no space left on device", "free some space")
    monkeypatch.undo()
    assert snapshot(target) == before
    assert listing(out) == ["idx"]
    assert check_index(target).ok


def test_disk_full_naming_a_file_in_staging_names_the_index(
    corpus: Path, out: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error naming a file of the half-built index names the index the user asked for."""
    from odqa import fs

    real = fs.write_bytes

    def full(path, data):
        if Path(path).name == "manifest.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(fs, "write_bytes", full)
    result = build(corpus, out / "idx", tiny_model, "bm25")
    line = error_line(result, f"{(out / 'idx').resolve()}: no space left on device")
    assert ".partial-" not in line
    assert listing(out) == []


@pytest.mark.parametrize(
    ("code", "cause"),
    [(errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied")],
)
def test_a_read_only_output_folder(
    corpus: Path,
    out: Path,
    tiny_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    cause: str,
) -> None:
    read_only(monkeypatch, out, code)
    result = build(corpus, out / "idx", tiny_model, "bm25")
    error_line(result, str((out / "idx").resolve()), cause)
    assert ".lock" not in result.stderr
    monkeypatch.undo()
    assert listing(out) == []


def test_disk_full_during_add_documents_leaves_the_index(
    corpus: Path, out: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = odqa.build_index(corpus, out / "idx", retrievers=["bm25"], language="en")
    before = snapshot(index)
    FullDisk(monkeypatch, out, 100)
    with pytest.raises(OSError) as caught:
        odqa.add_documents(index, [odqa.Document("d9", "", "cobalamin and anaemia")])
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert snapshot(index) == before
    assert listing(out) == ["idx"]
    assert check_index(index).ok


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_add_documents_errors_are_one_line_at_the_cli_boundary(
    corpus: Path, out: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """As a command that adds documents shows them (``user_errors`` given the index)."""
    index = odqa.build_index(corpus, out / "idx", retrievers=["bm25"], language="en")
    before = snapshot(index)
    adder = typer.Typer()

    @adder.command()
    def add(folder: Path) -> None:
        with user_errors(folder):
            odqa.add_documents(folder, [odqa.Document("d9", "", "cobalamin and anaemia")])

    if code == errno.ENOSPC:
        FullDisk(monkeypatch, out, 100)
        cause = "no space left on device"
    else:
        read_only(monkeypatch, out)
        cause = "read-only file system"
    result = runner.invoke(adder, [str(index)])
    error_line(result, f"{index}: {cause}")
    monkeypatch.undo()
    assert snapshot(index) == before
    assert listing(out) == ["idx"]


def test_an_error_does_not_land_on_the_progress_bar(
    corpus: Path, out: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``odqa index`` shows a bar; the disk fills while it is on screen."""
    FullDisk(monkeypatch, out, 0)
    result = build(corpus, out / "idx", tiny_model, "bm25")
    assert "indexing" in result.stderr  # the bar was drawn
    error_line(result, "no space left on device")


def test_user_errors_starts_a_fresh_line_after_a_live_bar() -> None:
    demo = typer.Typer()

    @demo.command()
    def work() -> None:
        with user_errors():
            bar = tqdm(total=10, desc="working", file=sys.stderr)
            bar.update(3)
            raise OdqaError("it broke")

    result = runner.invoke(demo, [])
    assert "working" in result.stderr
    assert error_line(result) == "error: it broke"


@pytest.fixture()
def bm25_index(corpus: Path, tmp_path: Path) -> Path:
    return odqa.build_index(corpus, tmp_path / "idx", retrievers=["bm25"], language="en")


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("truncated", "model.safetensors is damaged"),
        ("garbage", "model.safetensors is damaged"),
        ("no weights", "no model weights found"),
        ("bad config", "cannot load a question-answering model"),
        ("no config", "no config.json"),
        ("missing", "not a model folder on disk"),
    ],
)
def test_a_damaged_reader_on_ask(
    bm25_index: Path, tmp_path: Path, damage: str, expected: str
) -> None:
    reader = save_hand_set_reader(tmp_path / "reader")
    weights = reader / "model.safetensors"
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "garbage":
        weights.write_bytes(b"\x00garbage" * 64)
    elif damage == "no weights":
        weights.unlink()
    elif damage == "bad config":
        (reader / "config.json").write_text("{not json", encoding="utf-8")
    elif damage == "no config":
        (reader / "config.json").unlink()
    else:
        shutil.rmtree(reader)
    result = odqa_cli("ask", bm25_index, "What causes scurvy?", "--reader-model", reader)
    error_line(result, str(reader), expected)


def test_an_intact_reader_still_answers(bm25_index: Path, tmp_path: Path) -> None:
    reader = save_hand_set_reader(tmp_path / "reader")
    result = odqa_cli("ask", bm25_index, "What causes scurvy?", "--reader-model", reader)
    assert result.exit_code == 0, result.output
    assert "vitamin c" in result.stdout.lower()
