"""BM25 at scale: odqa's streamed build against bm25s, side by side, as the corpus grows.

Each size is a synthetic corpus of DPR-like passages (60 to 140 words drawn from SciFact's
vocabulary by frequency; see ``synthetic_text.py``), cached under ``bench/results/cache``.
Per size, in separate processes so that each peak resident memory is its own:

* odqa: ``build_index(corpus, retrievers=["bm25"], language="en")`` — reading, checking and
  storing the corpus, chunking, analysis, the matrix — wall time and peak RSS;
* bm25s (up to ``--bm25s-max``): the same texts read from the same file, then
  ``bm25s.tokenize`` (bm25s's English stopwords, PyStemmer English) + ``BM25.index`` +
  ``save``, timed with and without the reading;
* search: SciFact's test queries one at a time at k=10 on each index (odqa's ``Searcher``
  and bm25s's ``retrieve`` on the memory-mapped index), p50/p95, with 1 and 2 threads.

Run: .venv/bin/python bench/scale.py --sizes 10000,100000,1000000,10000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from synthetic_text import SciFactLike, scifact_documents, write_jsonl  # noqa: E402

DATA = Path(os.environ.get("ODQA_SHARED_DATA", ROOT.parent / "shared" / "data"))
CACHE = ROOT / "bench" / "results" / "cache"
WORK = ROOT / "build" / "bench" / "scale"
PYTHON = sys.executable

PEAK = """
def peak_rss_mb():  # this program's own high-water mark (ru_maxrss counts the parent's too)
    for line in open("/proc/self/status", encoding="ascii"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

ODQA_BUILD = (
    PEAK
    + """
import json, sys, time
started = time.perf_counter()
import odqa
path = odqa.build_index(sys.argv[1], sys.argv[2], retrievers=["bm25"], language="en",
                        overwrite=True)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "torch_loaded": "torch" in sys.modules,
                  "peak_rss_mb": peak_rss_mb()}))
"""
)

BM25S_BUILD = (
    PEAK
    + """
import json, sys, time
started = time.perf_counter()
import bm25s, Stemmer
texts = [json.loads(line)["text"] for line in open(sys.argv[1], encoding="utf-8")]
read = time.perf_counter()
tokens = bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"),
                        show_progress=False)
del texts
model = bm25s.BM25(method="lucene", k1=0.9, b=0.4)
model.index(tokens, show_progress=False)
model.save(sys.argv[2])
done = time.perf_counter()
print(json.dumps({"seconds": done - started, "seconds_without_reading": done - read,
                  "peak_rss_mb": peak_rss_mb()}))
"""
)

SEARCH = """
import json, os, sys, time
import numpy as np
queries = json.loads(open(sys.argv[3], encoding="utf-8").read())
def percentiles(run_one):
    run_one(queries[0])
    times = []
    for query in queries:
        started = time.perf_counter()
        run_one(query)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))
if sys.argv[1] == "odqa":
    import odqa
    searcher = odqa.Searcher(sys.argv[2], retriever="bm25")
    p50, p95 = percentiles(lambda q: searcher.search([q], k=10))
else:
    import bm25s, Stemmer
    model = bm25s.BM25.load(sys.argv[2], mmap=True)
    stemmer = Stemmer.Stemmer("english")
    def one(q):
        tokens = bm25s.tokenize([q], stopwords="en", stemmer=stemmer, show_progress=False)
        return model.retrieve(tokens, k=10, show_progress=False, n_threads=1)
    p50, p95 = percentiles(one)
print(json.dumps({"p50_ms": p50, "p95_ms": p95}))
"""


def run_child(code: str, *args: str, threads: int | None = None) -> dict:
    """Run ``code`` in a fresh interpreter; its last stdout line is JSON."""
    env = dict(os.environ)
    if threads is not None:
        env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    out = subprocess.run(
        [PYTHON, "-c", code, *map(str, args)], capture_output=True, text=True, env=env
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def corpus_of(size: int, model: SciFactLike | None) -> Path:
    """The cached synthetic corpus of ``size`` passages (written on first use)."""
    path = CACHE / f"scale-passages-{size}.jsonl"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        model = model or SciFactLike(scifact_documents(DATA))
        partial = path.with_suffix(".partial")
        texts = model.texts(size, seed=size, lengths="passage")
        write_jsonl(partial, ((f"p{i}", text) for i, text in enumerate(texts)))
        partial.rename(path)
    return path


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_queries() -> Path:
    """SciFact's test queries as a JSON list of strings."""
    path = CACHE / "scifact-test-queries.json"
    if not path.exists():
        judged = {
            line.split("\t")[0]
            for line in (DATA / "beir-scifact" / "qrels" / "test.tsv").read_text().splitlines()[1:]
        }
        lines = (DATA / "beir-scifact" / "queries.jsonl").read_text().splitlines()
        texts = [q["text"] for q in map(json.loads, lines) if q["_id"] in judged]
        path.write_text(json.dumps(texts))
    return path


def measure(size: int, bm25s_max: int, keep: bool) -> dict:
    corpus = corpus_of(size, None)
    ours, theirs = WORK / f"odqa-{size}", WORK / f"bm25s-{size}"
    WORK.mkdir(parents=True, exist_ok=True)
    record: dict = {"passages": size, "corpus_bytes": corpus.stat().st_size}
    build = run_child(ODQA_BUILD, corpus, ours)
    record["odqa"] = {
        **build,
        "disk_bytes": disk_bytes(ours),
        "bm25_bytes": disk_bytes(ours / "bm25"),
    }
    if size <= bm25s_max:
        reference = run_child(BM25S_BUILD, corpus, theirs)
        record["bm25s"] = {**reference, "disk_bytes": disk_bytes(theirs)}
        record["build_time_ratio"] = build["seconds"] / reference["seconds_without_reading"]
        record["build_time_ratio_both_reading"] = build["seconds"] / reference["seconds"]
        record["peak_rss_ratio"] = build["peak_rss_mb"] / reference["peak_rss_mb"]
    queries = test_queries()
    for threads in (1, 2):
        record["odqa"][f"search_{threads}_threads"] = run_child(
            SEARCH, "odqa", ours, queries, threads=threads
        )
        if size <= bm25s_max:
            record["bm25s"][f"search_{threads}_threads"] = run_child(
                SEARCH, "bm25s", theirs, queries, threads=threads
            )
    if size <= bm25s_max:
        record["search_p50_ratio"] = (
            record["odqa"]["search_1_threads"]["p50_ms"]
            / record["bm25s"]["search_1_threads"]["p50_ms"]
        )
    if not keep:
        shutil.rmtree(ours, ignore_errors=True)
        shutil.rmtree(theirs, ignore_errors=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--bm25s-max", type=int, default=1_000_000, help="largest size for bm25s")
    parser.add_argument("--keep", action="store_true", help="keep the indexes under build/bench")
    parser.add_argument("--name", default="scale_bm25", help="results file under bench/results")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from common import report  # torch is imported here only, never in the measured children

    results = []
    for size in (int(value) for value in args.sizes.split(",")):
        results.append(measure(size, args.bm25s_max, args.keep))
        print(json.dumps(results[-1]), flush=True)
        report(args.name, {"sizes": results})


if __name__ == "__main__":
    main()
