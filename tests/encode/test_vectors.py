"""Precomputed vectors: the odqa-vectors folder written and read back, ``odqa encode``, and
``build_index(embeddings_from=...)`` giving the index encoding gives, or a refusal naming the
shard file and row that leaves an existing index as it was."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest
from typer.testing import CliRunner

import odqa
from odqa.cli import app
from odqa.corpus import ChunkSpec
from odqa.encode import VectorsFolder, VectorsWriter
from odqa.errors import InputError
from odqa.index.builder import encode_corpus

CHUNK = ChunkSpec(tokens=32, overlap=8)
QUERIES = ["lack of vitamin C causes scurvy", "cell division", "deep blue ocean"]


def build(corpus: Path, target: Path, model: Path, **settings) -> Path:
    defaults = {"model": str(model), "language": "en", "chunk": CHUNK}
    return odqa.build_index(corpus, target, **{**defaults, **settings})


def ids_of(folder: Path) -> list[tuple[str, int]]:
    found = []
    for path in sorted(folder.glob("shard-*.passages.jsonl")):
        found += [(r["doc_id"], r["chunk"]) for r in map(json.loads, path.read_text().splitlines())]
    return found


@pytest.fixture()
def vectors(tmp_path: Path, small_corpus: Path, tiny_model: Path) -> Path:
    """The small corpus's dense vectors (float32), three passages a shard."""
    return encode_corpus(
        small_corpus,
        tmp_path / "vectors",
        model=str(tiny_model),
        chunk=CHUNK,
        dtype="float32",
        shard_passages=3,
    )


def test_writer_cuts_shards_and_the_cursor_reads_them_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ids = [(f"d{i}", i % 2) for i in range(7)]
    lens = np.array([2, 1, 3, 2, 1, 4, 2])
    rows = rng.standard_normal((int(lens.sum()), 4)).astype(np.float32)
    encoder = {"model": "m", "sha256": "0" * 64}
    with VectorsWriter(tmp_path / "v", "colbert", encoder, 4, "float32", shard_passages=3) as w:
        w.add(ids[:2], rows[:3], lens[:2])
        w.add(ids[2:], rows[3:], lens[2:])
    folder = VectorsFolder(tmp_path / "v")
    assert [s.passages for s in folder.shards] == [3, 3, 1]
    assert [s.tokens for s in folder.shards] == [6, 7, 2] and folder.tokens == len(rows)
    cursor = folder.cursor()
    first, first_lens = cursor.take(ids[:4])
    rest, rest_lens = cursor.take(ids[4:])
    cursor.close()
    assert np.array_equal(np.concatenate([first, rest]), rows)
    assert np.array_equal(np.concatenate([first_lens, rest_lens]), lens)


def test_an_interrupted_writer_leaves_nothing(tmp_path: Path) -> None:
    writer = VectorsWriter(tmp_path / "v", "dense", {"sha256": "x"}, 2, shard_passages=1)
    with pytest.raises(KeyboardInterrupt), writer:
        writer.add([("d1", 0), ("d2", 0)], np.ones((2, 2)))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_the_writer_refuses_rows_that_do_not_match(tmp_path: Path) -> None:
    with VectorsWriter(tmp_path / "v", "dense", {"sha256": "x"}, 3) as writer:
        with pytest.raises(InputError, match=r"shape \(n, 3\)"):
            writer.add([("d1", 0)], np.ones((1, 4)))
        with pytest.raises(InputError, match="NaN"):
            writer.add([("d1", 0)], np.full((1, 3), np.nan))
        with pytest.raises(InputError, match="do not agree"):
            writer.add([("d1", 0), ("d2", 0)], np.ones((1, 3)))


def test_index_from_precomputed_vectors_equals_the_encoded_index(
    tmp_path: Path, small_corpus: Path, tiny_model: Path, vectors: Path
) -> None:
    encoded = build(small_corpus, tmp_path / "encoded", tiny_model, retrievers=["dense"])
    read = build(
        small_corpus, tmp_path / "read", tiny_model, retrievers=["dense"], embeddings_from=vectors
    )
    stored = [faiss.read_index(str(path / "dense" / "dense.faiss")) for path in (encoded, read)]
    assert stored[0].ntotal == stored[1].ntotal == len(ids_of(vectors)) > 6
    first, second = (index.reconstruct_n(0, index.ntotal) for index in stored)
    np.testing.assert_allclose(first, second, atol=1e-5)
    results = [odqa.Searcher(path).search(QUERIES, 5, unit="passage") for path in (encoded, read)]
    assert [[h.row for h in hits] for hits in results[0]] == [
        [h.row for h in hits] for hits in results[1]
    ]
    settings = odqa.Manifest.read(read).retrievers["dense"]
    assert settings["vectors_from"] == str(vectors.resolve())
    assert "vectors_from" not in odqa.Manifest.read(encoded).retrievers["dense"]


def test_float16_vectors_give_the_same_ranking(
    tmp_path: Path, small_corpus: Path, tiny_model: Path
) -> None:
    half = encode_corpus(small_corpus, tmp_path / "half", model=str(tiny_model), chunk=CHUNK)
    assert VectorsFolder(half).dtype == "float16"
    encoded = build(small_corpus, tmp_path / "encoded", tiny_model, retrievers=["dense"])
    read = build(
        small_corpus, tmp_path / "read", tiny_model, retrievers=["dense"], embeddings_from=half
    )
    stored = [faiss.read_index(str(path / "dense" / "dense.faiss")) for path in (encoded, read)]
    first, second = (index.reconstruct_n(0, index.ntotal) for index in stored)
    np.testing.assert_allclose(first, second, atol=2e-3)
    top = [odqa.Searcher(path).search(QUERIES, 1, unit="passage") for path in (encoded, read)]
    assert [hits[0].row for hits in top[0]] == [hits[0].row for hits in top[1]]


def damage_dimension(folder: Path) -> None:
    rows = np.load(folder / "shard-00001.npy")
    np.save(folder / "shard-00001.npy", rows[:, :-1])


def damage_count(folder: Path) -> None:
    rows = np.load(folder / "shard-00001.npy")
    np.save(folder / "shard-00001.npy", rows[:-1])


def damage_nan(folder: Path) -> None:
    rows = np.load(folder / "shard-00001.npy")
    rows[2, 5] = np.nan
    np.save(folder / "shard-00001.npy", rows)


def damage_ids(folder: Path) -> None:
    path = folder / "shard-00001.passages.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = json.dumps({"doc_id": "elsewhere", "chunk": 0})
    path.write_text("\n".join(lines) + "\n")


def damage_model(folder: Path) -> None:
    description = json.loads((folder / "vectors.json").read_text())
    description["encoder"]["sha256"] = "f" * 64
    (folder / "vectors.json").write_text(json.dumps(description))


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (damage_dimension, r"shard-00001\.npy: field 'dim': shape \(\d+, 63\)"),
        (damage_count, r"shard-00001\.npy: field 'rows': (\d+) rows, vectors\.json says (?!\1)\d+"),
        (damage_nan, r"shard-00001\.npy: field 'rows': row 3 holds NaN"),
        (damage_ids, r"shard-00001\.passages\.jsonl:2: passage elsewhere#0 where the corpus has"),
        (damage_model, r"vectors\.json: field 'encoder\.sha256': the vectors were made by"),
    ],
)
def test_bad_vectors_are_refused_naming_the_shard_and_row_and_the_index_stays(
    tmp_path: Path, small_corpus: Path, tiny_model: Path, vectors: Path, damage, named: str
) -> None:
    existing = build(small_corpus, tmp_path / "index", tiny_model, retrievers=["bm25", "dense"])
    before = {p: p.read_bytes() for p in existing.rglob("*") if p.is_file()}
    damage(vectors)
    with pytest.raises(InputError, match=named):
        build(
            small_corpus,
            existing,
            tiny_model,
            retrievers=["bm25", "dense"],
            embeddings_from=vectors,
            overwrite=True,
        )
    assert {p: p.read_bytes() for p in existing.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["corpus.jsonl", "index", "vectors"]
    )


def test_other_chunking_and_another_corpus_are_refused(
    tmp_path: Path, small_corpus: Path, tiny_model: Path, vectors: Path
) -> None:
    with pytest.raises(InputError, match="pass --chunk-tokens 32"):
        odqa.build_index(
            small_corpus,
            tmp_path / "i1",
            model=str(tiny_model),
            retrievers=["dense"],
            chunk=ChunkSpec(tokens=48, overlap=8),
            embeddings_from=vectors,
        )
    longer = tmp_path / "longer.jsonl"
    extra = json.dumps({"id": "d7", "text": "One more document."})
    longer.write_text(small_corpus.read_text() + extra + "\n")
    with pytest.raises(InputError, match="passage d7#0 has no vector"):
        build(longer, tmp_path / "i2", tiny_model, retrievers=["dense"], embeddings_from=vectors)
    with pytest.raises(InputError, match="add dense to --retrievers"):
        build(
            small_corpus, tmp_path / "i3", tiny_model, retrievers=["bm25"], embeddings_from=vectors
        )
    assert not (tmp_path / "i1").exists() and not (tmp_path / "i2").exists()


def test_colbert_index_from_precomputed_token_vectors(
    tmp_path: Path, small_corpus: Path, tiny_model: Path
) -> None:
    tokens = encode_corpus(
        small_corpus,
        tmp_path / "tokens",
        kind="colbert",
        model=str(tiny_model),
        chunk=CHUNK,
        shard_passages=4,
    )  # float16, as a build keeps the vectors it trains on: the same codec comes out
    assert VectorsFolder(tokens).tokens > VectorsFolder(tokens).passages
    encoded = build(small_corpus, tmp_path / "encoded", tiny_model, retrievers=["colbert"])
    read = build(
        small_corpus, tmp_path / "read", tiny_model, retrievers=["colbert"], embeddings_from=tokens
    )
    recorded = [odqa.Manifest.read(path).retrievers["colbert"] for path in (encoded, read)]
    assert recorded[0]["tokens"] == recorded[1]["tokens"] == VectorsFolder(tokens).tokens
    exact = [
        odqa.Searcher(path, exhaustive=True).search(QUERIES, 3, unit="passage")
        for path in (encoded, read)
    ]
    for first, second in zip(exact[0], exact[1], strict=True):
        assert [h.row for h in first] == [h.row for h in second]
        assert [h.score for h in first] == pytest.approx([h.score for h in second], abs=1e-2)


def test_encode_command_writes_a_folder_index_reads(
    tmp_path: Path, small_corpus: Path, tiny_model: Path
) -> None:
    runner = CliRunner()
    help_text = runner.invoke(app, ["encode", "--help"]).output
    assert "Example: odqa encode" in help_text and "--shard-passages" in help_text
    args = ["--model", str(tiny_model), "--chunk-tokens", "32", "--chunk-overlap", "8"]
    done = runner.invoke(app, ["encode", str(small_corpus), str(tmp_path / "v"), *args])
    assert done.exit_code == 0, done.output
    assert "dense vectors of 64" in done.output
    again = runner.invoke(app, ["encode", str(small_corpus), str(tmp_path / "v"), *args])
    assert again.exit_code != 0 and "Traceback" not in again.output
    index_args = ["--retrievers", "dense", "--embeddings-from", str(tmp_path / "v"), *args]
    built = runner.invoke(app, ["index", str(small_corpus), str(tmp_path / "i"), *index_args])
    assert built.exit_code == 0, built.output
    assert "vectors_from=" in built.output
    wrong = runner.invoke(
        app,
        [
            "index",
            str(small_corpus),
            str(tmp_path / "j"),
            *index_args[:4],
            "--model",
            str(tiny_model),
        ],
    )
    assert wrong.exit_code != 0 and "--chunk-tokens 32" in wrong.output


def interrupted_after_a_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next ``encode_corpus`` is cut short (Ctrl-C) after its first shard closes."""
    cut = VectorsWriter.cut

    def cut_then_stop(self: VectorsWriter, documents: int) -> None:
        cut(self, documents)
        monkeypatch.setattr(VectorsWriter, "cut", cut)
        raise KeyboardInterrupt

    monkeypatch.setattr(VectorsWriter, "cut", cut_then_stop)


def test_a_rerun_that_starts_afresh_says_why(
    tmp_path: Path,
    small_corpus: Path,
    tiny_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = {"model": str(tiny_model), "chunk": CHUNK, "shard_passages": 2, "batch_docs": 2}
    target = tmp_path / "vectors"
    interrupted_after_a_shard(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        encode_corpus(small_corpus, target, **settings)
    with small_corpus.open("a", encoding="utf-8") as handle:  # the corpus changes meanwhile
        handle.write(json.dumps({"id": "new", "text": "a late addition"}) + "\n")
    with caplog.at_level("WARNING", logger="odqa"):
        folder = VectorsFolder(encode_corpus(small_corpus, target, **settings))
    assert (
        "starting afresh: the corpus changed (its size or time) since the unfinished run"
        in caplog.text
    )
    assert ("new", 0) in ids_of(folder.folder)


def test_two_encode_runs_into_one_folder_take_turns(
    tmp_path: Path, small_corpus: Path, tiny_model: Path
) -> None:
    import threading
    import time

    from odqa import fs
    from odqa.encode.vectors import unfinished_folder

    target = tmp_path / "vectors"
    finished: list[Path] = []
    with fs.writer_lock(target):  # another run holds the folder
        runner = threading.Thread(
            target=lambda: finished.append(
                encode_corpus(small_corpus, target, model=str(tiny_model), chunk=CHUNK)
            )
        )
        runner.start()
        time.sleep(1.0)
        assert not unfinished_folder(target.resolve()).exists() and not finished
    runner.join(60)
    assert finished == [target.resolve()] and VectorsFolder(target).passages > 0
