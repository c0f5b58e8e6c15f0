"""Builds and encodings on a Ray cluster equal the single-process ones, survive a killed
worker, and an interrupted encoding is taken up where it stopped.

A local cluster (2 CPUs, loopback only) is started once for the module; ``-m "not ray"``
leaves these tests out.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import faiss
import numpy as np
import pytest
from typer.testing import CliRunner

import odqa
from odqa.cli import app
from odqa.corpus import ChunkSpec
from odqa.encode import VECTORS, Encoder
from odqa.encode.cluster import Step, WorkerPool, connect, import_ray
from odqa.encode.vectors import VectorsFolder, unfinished_folder
from odqa.errors import OdqaError
from odqa.index.builder import encode_corpus
from odqa.index.settings import ColBERTSettings, RaySettings

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]

CHUNK = ChunkSpec(tokens=32, overlap=8)
WORDS = ["vitamin", "scurvy", "ocean", "protein", "kinase", "cell", "division", "cycle", "deep"]
COLLECTION_FILES = ("documents.jsonl", "documents.offsets.npy", "doc_ids.txt", "passages.npy")


@pytest.fixture(scope="module")
def cluster():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """160 documents of 10 to 120 words (some cut into several passages), one empty."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("ray-corpus") / "corpus.jsonl"
    lines = [
        {"id": f"d{i}", "title": f"T{i}", "text": " ".join(rng.choice(WORDS, 10 + i % 111))}
        for i in range(160)
    ]
    lines[7] = {"id": "d7", "title": "", "text": ""}
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def build(corpus: Path, target: Path, model: Path, **settings) -> Path:
    defaults = {
        "model": str(model),
        "language": "en",
        "chunk": CHUNK,
        "batch_docs": 16,
        "retrievers": ["bm25", "dense", "colbert"],
        "colbert": ColBERTSettings(sample=24),
    }
    return odqa.build_index(corpus, target, **{**defaults, **settings})


def dense_vectors(index: Path) -> np.ndarray:
    stored = faiss.read_index(str(index / "dense" / "dense.faiss"))
    return stored.reconstruct_n(0, stored.ntotal)


def same_bytes(first: Path, second: Path, names) -> list[str]:
    return [name for name in names if (first / name).read_bytes() != (second / name).read_bytes()]


def test_a_build_on_ray_is_the_single_process_build(
    cluster, corpus: Path, tiny_model: Path, tmp_path: Path
) -> None:
    here = build(corpus, tmp_path / "here", tiny_model)
    there = build(corpus, tmp_path / "there", tiny_model, ray=RaySettings(workers=2))
    assert same_bytes(here, there, COLLECTION_FILES) == []
    bm25 = sorted(p.relative_to(here) for p in (here / "bm25").rglob("*") if p.is_file())
    assert bm25 and same_bytes(here, there, bm25) == []
    assert np.abs(dense_vectors(here) - dense_vectors(there)).max() <= 1e-5
    centroids = [np.load(index / "colbert" / "codec" / "centroids.npy") for index in (here, there)]
    assert np.array_equal(*centroids)  # trained once, by the driver, on the same sample
    codes = [np.load(index / "colbert" / "codes.npy") for index in (here, there)]
    assert len(codes[0]) == len(codes[1])
    # the same centroids give the same codes, but for a token whose nearest two are a
    # rounding apart (the sample's vectors, which the single build keeps from encoding them
    # in the sample's batches, differ in the last bits from the main pass's)
    assert (codes[0] == codes[1]).mean() >= 0.999, (codes[0] == codes[1]).mean()
    manifests = [odqa.Manifest.read(index) for index in (here, there)]
    assert manifests[0].counts == manifests[1].counts
    assert manifests[0].built_on == {}
    ray_record = manifests[1].built_on["ray"]
    assert ray_record["workers"] == 2 and ray_record["cpus"] == 2 and ray_record["nodes"] == 1
    queries = ["vitamin scurvy", "cell division cycle", "deep blue ocean"]
    for retriever in ("bm25", "dense", "colbert", "hybrid"):
        hits = [
            odqa.Searcher(index, exhaustive=True).search(queries, 5, retriever=retriever)
            for index in (here, there)
        ]
        for first, second in zip(*hits, strict=True):
            assert [hit.doc_id for hit in first] == [hit.doc_id for hit in second], retriever


def test_a_build_without_an_encoder_cuts_words_on_ray(
    cluster, corpus: Path, tiny_model: Path, tmp_path: Path
) -> None:
    here = build(corpus, tmp_path / "here", tiny_model, retrievers=["bm25"])
    there = build(corpus, tmp_path / "there", tiny_model, retrievers=["bm25"], ray=RaySettings())
    assert odqa.Manifest.read(there).chunking["tokenizer"] == "words"
    assert same_bytes(here, there, COLLECTION_FILES) == []
    bm25 = sorted(p.relative_to(here) for p in (here / "bm25").rglob("*") if p.is_file())
    assert same_bytes(here, there, bm25) == []


def test_a_killed_worker_is_restarted_and_the_index_is_complete(
    cluster, corpus: Path, tiny_model: Path, tmp_path: Path
) -> None:
    here = build(corpus, tmp_path / "here", tiny_model, retrievers=["dense"], batch_docs=4)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["index"] = build(
                corpus,
                tmp_path / "there",
                tiny_model,
                retrievers=["dense"],
                batch_docs=4,
                ray=RaySettings(workers=2),
            )
        except BaseException as exc:  # handed to the test below
            outcome["error"] = exc

    builder = threading.Thread(target=run)
    builder.start()
    deadline = time.monotonic() + 120
    names: list[str] = []
    while not names and time.monotonic() < deadline and builder.is_alive():
        names = [n for n in ray.util.list_named_actors() if n.startswith(WorkerPool.NAME)]
        time.sleep(0.05)
    assert names, "no worker started"
    victim = ray.get_actor(sorted(names)[0])
    first_pid = ray.get(victim.pid.remote())  # answered after its queued batches
    os.kill(first_pid, signal.SIGKILL)
    builder.join(timeout=300)
    assert "error" not in outcome, outcome.get("error")
    there = outcome["index"]
    assert same_bytes(here, there, COLLECTION_FILES) == []
    assert np.abs(dense_vectors(here) - dense_vectors(there)).max() <= 1e-5


def test_an_encoding_on_ray_equals_one_here(
    cluster, corpus: Path, tiny_model: Path, tmp_path: Path
) -> None:
    settings = {"model": str(tiny_model), "chunk": CHUNK, "batch_docs": 16, "shard_passages": 50}
    here = VectorsFolder(encode_corpus(corpus, tmp_path / "here", **settings))
    there = VectorsFolder(
        encode_corpus(corpus, tmp_path / "there", ray=RaySettings(workers=2), **settings)
    )
    assert [s.passages for s in here.shards] == [s.passages for s in there.shards]
    assert len(here.shards) > 1
    for first, second in zip(here.shards, there.shards, strict=True):
        rows = [folder.shard_arrays(shard)[0] for folder, shard in ((here, first), (there, second))]
        assert np.abs(np.asarray(rows[0], np.float32) - rows[1]).max() <= 1e-3


def test_an_interrupted_encoding_is_taken_up_where_it_stopped(
    corpus: Path, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = {"model": str(tiny_model), "chunk": CHUNK, "batch_docs": 16, "shard_passages": 40}
    whole = VectorsFolder(encode_corpus(corpus, tmp_path / "whole", **settings))
    calls = {"n": 0}
    encode = Step.__call__

    def counted(self, texts):
        calls["n"] += 1
        if calls["n"] == calls.get("stop"):
            raise KeyboardInterrupt
        return encode(self, texts)

    monkeypatch.setattr(Step, "__call__", counted)
    calls["stop"] = 7
    target = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        encode_corpus(corpus, target, **settings)
    assert not target.exists() and unfinished_folder(target.resolve()).is_dir()
    calls["n"], calls["stop"] = 0, 1  # the command is cut short too, and says what it kept
    command = ["encode", str(corpus), str(target), "--model", str(tiny_model)]
    said = CliRunner().invoke(app, [*command, "--chunk-tokens", "32", "--chunk-overlap", "8"])
    assert said.exit_code == 130 and "the finished shards are kept in" in said.output
    del calls["stop"]
    calls["n"] = 0
    resumed = VectorsFolder(encode_corpus(corpus, target, **settings))
    assert 0 < calls["n"] < 10  # 10 batches in all; those of the kept shards not redone
    assert not unfinished_folder(target.resolve()).exists()
    assert resumed.passages == whole.passages
    assert [s.passages for s in resumed.shards] == [s.passages for s in whole.shards]
    for first, second in zip(whole.shards, resumed.shards, strict=True):
        rows = [folder.shard_arrays(s)[0] for folder, s in ((whole, first), (resumed, second))]
        assert np.abs(np.asarray(rows[0], np.float32) - rows[1]).max() <= 1e-3  # other batches
        names = (f"{first.name}.passages.jsonl",)
        assert same_bytes(whole.folder, resumed.folder, names) == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_address_where_nothing_answers_fails_at_once_naming_it(scheme: str) -> None:
    address = f"{scheme}127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(OdqaError, match=rf"no Ray cluster answers at '{address}'.*refused"):
        connect(RaySettings(address=address))
    assert time.monotonic() - started < 5


def test_an_address_that_never_answers_fails_within_the_probe_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import odqa.encode.cluster as cluster

    monkeypatch.setattr(cluster, "PROBE_SECONDS", 0.5)

    def silent(address, timeout):  # a host that drops the packets: the connect times out
        time.sleep(timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(cluster.socket, "create_connection", silent)
    started = time.monotonic()
    with pytest.raises(OdqaError, match=r"answers at '10.1.2.3:6379' \(no answer within 0.5 s\)"):
        connect(RaySettings(address="10.1.2.3:6379"))
    assert time.monotonic() - started < 3


def test_a_malformed_address_is_refused() -> None:
    with pytest.raises(OdqaError, match=r"HOST:PORT"):
        connect(RaySettings(address="nowhere"))


def test_ray_asked_for_without_it_names_the_extra(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(OdqaError, match=r"pip install 'odqa\[ray\]'"):
        import_ray()
    result = CliRunner().invoke(
        app, ["index", str(corpus), str(tmp_path / "idx"), "--retrievers", "bm25", "--ray", "auto"]
    )
    assert result.exit_code == 2 and "odqa[ray]" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "idx").exists()


def test_the_index_command_on_ray_says_where_it_ran(
    cluster, corpus: Path, tiny_model: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    assert "--ray-gpus-per-worker" in runner.invoke(app, ["index", "--help"]).output
    target = tmp_path / "idx"
    result = runner.invoke(
        app,
        [
            "index", str(corpus), str(target), "--retrievers", "bm25,dense",
            "--model", str(tiny_model), "--ray", "auto", "--ray-workers", "2",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "built on a Ray cluster of 1 node (2 CPUs, 0 GPUs): 2 workers of 1 CPU" in result.output
    too_many = runner.invoke(
        app,
        ["index", str(corpus), str(tmp_path / "no"), "--retrievers", "bm25", "--ray", "auto",
         "--ray-workers", "5"],
    )  # fmt: skip
    assert too_many.exit_code == 2 and "do not fit (at most 2)" in too_many.output


def test_a_worker_refuses_a_model_that_is_not_the_builds(tiny_model: Path) -> None:
    step = Step(Encoder(VECTORS, str(tiny_model), sha256="0" * 64))
    with pytest.raises(odqa.ModelMismatchError, match="give every machine the same model files"):
        step(["a passage"])
