"""Live collections: what adding and deleting 1,000 documents costs as the index grows.

Per size (passages of the scale bench's synthetic corpus, ``bench/results/cache``) and per
setup — ``bm25`` alone, ``bm25+dense`` (dense IVF-PQ built from precomputed vectors:
random unit vectors recorded as the embedded MiniLM's, with the passages cut as a build cuts
them) — each step in a process of its own (peak memory its ``VmHWM``):

* build the index (``bench/scale.py`` measures builds side by side with bm25s); BM25 alone:
  search p50/p95 on one thread (SciFact's test queries, k=10, cold files at first);
* add 1,000 new documents (``odqa.add_documents``; dense encodes them with MiniLM, whose
  time is given apart: it grows with the change alone);
* delete 1,000 documents of the index (``odqa.delete_documents``).

With ``--load`` (BM25, ``--searched-size`` passages, 1M by default): search latency
(p50/p99, SciFact's test queries, k=10, through the service so that every replacement is
taken up) without a writer, then with
a process adding 100 documents a second; every answer checked to hold all of a batch's
documents or none. With ``--deleted``: 30 % of the documents deleted (one call), search p50
before and after ``odqa.compact_index``.

Run: .venv/bin/python bench/live_updates.py --sizes 100000,1000000 [--load] [--deleted]
     .venv/bin/python bench/live_updates.py --setups "" --load --deleted --name live_search
     .venv/bin/python bench/live_updates.py --sizes 10000000 --name live_updates_10m
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from common import ROOT, WORK, report

sys.path.insert(0, str(ROOT / "bench"))
from scale import corpus_of, test_queries

PYTHON = sys.executable
LIVE = WORK / "live"
CACHE = ROOT / "bench" / "results" / "cache"
CHANGE = 1_000

CHILD = """
import json, sys, time
from pathlib import Path
def peak():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

BUILD = (
    CHILD
    + """
import odqa
from odqa.index.settings import DenseSettings
corpus, target, vectors = sys.argv[1], sys.argv[2], sys.argv[3]
settings = {"retrievers": ["bm25"], "language": "en", "overwrite": True}
if vectors != "-":
    settings |= {"retrievers": ["bm25", "dense"], "embeddings_from": vectors,
                 "dense": DenseSettings(index="ivfpq")}
started = time.perf_counter()
odqa.build_index(corpus, target, **settings)
seconds = round(time.perf_counter() - started, 1)
print(json.dumps({"seconds": seconds, "peak_rss_mb": round(peak())}))
"""
)

ADD = (
    CHILD
    + """
import odqa
import odqa.encode.stage as stage
spent = {"encode": 0.0}
real = stage.Step.__call__
def timed(self, texts):
    started = time.perf_counter()
    try:
        return real(self, texts)
    finally:
        spent["encode"] += time.perf_counter() - started
stage.Step.__call__ = timed
documents = [odqa.Document(d["id"], d["text"]) for d in map(json.loads, open(sys.argv[2]))]
started = time.perf_counter()
report = odqa.add_documents(sys.argv[1], documents)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": round(seconds, 2), "encode_seconds": round(spent["encode"], 2),
                  "peak_rss_mb": round(peak()), "report": report}))
"""
)

DELETE = (
    CHILD
    + """
import odqa
ids = [line.strip() for line in open(sys.argv[2]) if line.strip()]
started = time.perf_counter()
report = odqa.delete_documents(sys.argv[1], ids)
print(json.dumps({"seconds": round(time.perf_counter() - started, 2),
                  "peak_rss_mb": round(peak()), "report": report}))
"""
)

COMPACT = (
    CHILD
    + """
import odqa
started = time.perf_counter()
report = odqa.compact_index(sys.argv[1])
print(json.dumps({"seconds": round(time.perf_counter() - started, 2),
                  "peak_rss_mb": round(peak()), "report": report}))
"""
)

SEARCH = (
    CHILD
    + """
import numpy as np, odqa
queries = json.loads(open(sys.argv[2], encoding="utf-8").read())
with odqa.Searcher(sys.argv[1], retriever="bm25") as searcher:
    searcher.search(queries[:1], 10)
    times = []
    for query in queries:
        started = time.perf_counter()
        searcher.search([query], 10)
        times.append((time.perf_counter() - started) * 1000)
print(json.dumps({"p50_ms": round(float(np.percentile(times, 50)), 2),
                  "p95_ms": round(float(np.percentile(times, 95)), 2)}))
"""
)

WRITER = """
import json, sys, time
import odqa
index, batches, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
took = []
for batch in range(batches):
    started = time.perf_counter()
    docs = [odqa.Document(f"w{batch}-{i}", f"livebatch{batch} vitamin note {i}")
            for i in range(rate)]
    odqa.add_documents(index, docs)
    took.append(time.perf_counter() - started)
    time.sleep(max(0.0, 1.0 - took[-1]))
print(json.dumps({"batches": batches, "add_seconds_mean": sum(took) / len(took),
                  "add_seconds_max": max(took)}))
"""


def run(code: str, *args: object, threads: int | None = None) -> dict:
    """``code`` in a fresh interpreter; its last stdout line, as JSON."""
    env = dict(os.environ)
    if threads is not None:
        env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    done = subprocess.run(
        [PYTHON, "-c", code, *map(str, args)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def vectors_for(corpus: Path, size: int) -> Path:
    """A precomputed vectors folder for ``corpus``: its passages cut as a build with the
    embedded MiniLM cuts them, random unit vectors recorded as MiniLM's (cached)."""
    from odqa.corpus import ChunkSpec, read_documents
    from odqa.encode import VECTORS, Cutter, Encoder, VectorsWriter

    target = CACHE / f"live-vectors-{size}"
    if (target / "vectors.json").is_file():
        return target
    encoder = Encoder(VECTORS)
    cutter = Cutter.for_encoders([encoder], ChunkSpec())
    rng = np.random.default_rng(size)
    with VectorsWriter(
        target, "dense", encoder.describe(), encoder.dim, "float16", cutter.record(),
        shard_passages=1_000_000, overwrite=True,
    ) as writer:  # fmt: skip
        batch: list = []
        for document in read_documents(corpus):
            batch.append(document)
            if len(batch) == 4096:
                write_random(writer, cutter, batch, rng)
                batch = []
        if batch:
            write_random(writer, cutter, batch, rng)
    return target


def write_random(writer, cutter, documents, rng) -> None:
    passages = cutter.cut(documents)
    vectors = rng.standard_normal((len(passages), 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    writer.add([(passage.doc_id, passage.chunk) for passage in passages], vectors)


def change_files(size: int) -> tuple[Path, Path]:
    """1,000 new documents (JSONL) and 1,000 ids of the index to delete."""
    from common import DATA
    from scale import SciFactLike, scifact_documents

    LIVE.mkdir(parents=True, exist_ok=True)
    added = LIVE / "added.jsonl"
    if not added.exists():
        model = SciFactLike(scifact_documents(DATA))
        texts = model.texts(CHANGE, seed=123, lengths="passage")
        added.write_text(
            "".join(json.dumps({"id": f"new{i}", "text": t}) + "\n" for i, t in enumerate(texts))
        )
    gone = LIVE / f"deleted-{size}.txt"
    picks = np.random.default_rng(size).choice(size, CHANGE, replace=False)
    gone.write_text("".join(f"p{number}\n" for number in sorted(picks.tolist())))
    return added, gone


def measure(size: int, setup: str) -> dict:
    corpus = corpus_of(size, None)
    index = LIVE / f"{setup}-{size}"
    vectors = vectors_for(corpus, size) if setup == "bm25+dense" else "-"
    built = run(BUILD, corpus, index, vectors)
    added, gone = change_files(size)
    record = {"setup": setup, "passages": size, "build": built}
    if setup == "bm25":
        record["search_1_thread"] = run(SEARCH, index, test_queries(), threads=1)
    record["add_1000"] = run(ADD, index, added)
    record["delete_1000"] = run(DELETE, index, gone)
    record["disk_bytes"] = sum(p.stat().st_size for p in index.rglob("*") if p.is_file())
    shutil.rmtree(index)  # 10M passages: 13-21 GB a setup
    return record


def under_load(size: int, seconds: int) -> dict:
    """Search latency through the service, without and with a writer of 100 documents a
    second; every answer holds all of a batch's documents or none of them."""
    from fastapi.testclient import TestClient

    from odqa.server import create_app

    index = LIVE / f"load-{size}"
    shutil.rmtree(index, ignore_errors=True)
    run(BUILD, corpus_of(size, None), index, "-")
    queries = json.loads(test_queries().read_text())
    app = create_app(index, retriever="bm25", allow_writes=True)
    result: dict = {"passages": size, "writer_documents_per_second": 100}
    with TestClient(app) as client:
        result["alone"] = latencies(client, queries, seconds)
        writer = subprocess.Popen(
            [PYTHON, "-c", WRITER, str(index), str(seconds), "100"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        checks = {"queries": 0, "failed": 0, "half_batches": 0}
        stop = threading.Event()
        checker = threading.Thread(target=check_batches, args=(client, checks, stop))
        checker.start()
        result["with_writer"] = latencies(client, queries, seconds, writer)
        writer.wait()
        stop.set()
        checker.join()
        result["writer"] = json.loads(writer.stdout.read().strip().splitlines()[-1])
        result["batch_checks"] = checks
        result["reopened"] = client.get("/info").json()["serving"]["reopened"]
    return result


def latencies(client, queries, seconds, writer=None) -> dict:
    times, failed = [], 0
    deadline = time.monotonic() + seconds
    number = 0
    while time.monotonic() < deadline and (writer is None or writer.poll() is None):
        query = queries[number % len(queries)]
        number += 1
        started = time.perf_counter()
        response = client.post("/search", json={"query": query, "k": 10})
        times.append((time.perf_counter() - started) * 1000)
        failed += response.status_code != 200
    return {
        "queries": len(times),
        "failed": failed,
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p99_ms": round(float(np.percentile(times, 99)), 2),
    }


def check_batches(client, checks: dict, stop: threading.Event) -> None:
    """Ask for a batch's own word: its 100 documents come back whole, or not at all."""
    batch = 0
    while not stop.is_set():
        response = client.post("/search", json={"query": f"livebatch{batch}", "k": 100})
        checks["queries"] += 1
        if response.status_code != 200:
            checks["failed"] += 1
            continue
        found = len(response.json()["hits"])
        if found not in (0, 100):
            checks["half_batches"] += 1
        if found == 100:
            batch += 1
        time.sleep(0.05)


def deleted_share(size: int) -> dict:
    """30 % of the documents deleted: search p50 before and after compacting."""
    index = LIVE / f"deleted-{size}"
    run(BUILD, corpus_of(size, None), index, "-")
    queries = test_queries()
    fresh = run(SEARCH, index, queries, threads=1)
    gone = LIVE / f"thirty-{size}.txt"
    picks = np.random.default_rng(30).choice(size, int(size * 0.3), replace=False)
    gone.write_text("".join(f"p{number}\n" for number in sorted(picks.tolist())))
    deleted = run(DELETE, index, gone)
    before = run(SEARCH, index, queries, threads=1)
    compacted = run(COMPACT, index)
    after = run(SEARCH, index, queries, threads=1)
    return {
        "passages": size,
        "deleted": int(size * 0.3),
        "search_before_deleting": fresh,
        "delete": deleted,
        "search_30pct_deleted": before,
        "compact": compacted,
        "search_compacted": after,
        "p50_ratio": round(before["p50_ms"] / after["p50_ms"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--setups", default="bm25,bm25+dense")
    parser.add_argument("--load", action="store_true")
    parser.add_argument("--deleted", action="store_true")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--searched-size", type=int, default=1_000_000,
                        help="passages of the index of --load and --deleted")  # fmt: skip
    parser.add_argument("--name", default="live_updates", help="bench/results/NAME.json")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    steps = []
    for size in sizes:
        for setup in filter(None, args.setups.split(",")):
            steps.append(measure(size, setup))
            print(json.dumps(steps[-1]), flush=True)
            report(args.name, {"steps": steps})
    figures: dict = {"steps": steps}
    if args.load:
        figures["under_load"] = under_load(args.searched_size, args.seconds)
        print(json.dumps(figures["under_load"]), flush=True)
        report(args.name, figures)
    if args.deleted:
        figures["after_deletions"] = deleted_share(args.searched_size)
        print(json.dumps(figures["after_deletions"]), flush=True)
        report(args.name, figures)


if __name__ == "__main__":
    main()
