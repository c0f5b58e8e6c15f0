"""One huge document: peak memory and time of a BM25 build as the document grows.

Each size is a single JSONL document of SciFact-like text (the sample's abstracts repeated),
indexed in its own process (``build_index``, BM25, the default chunking), so each peak
resident memory is that build's own. A document past the largest odqa reads (64 MiB) is
refused: its step says so, with what the refusal cost.

Run: .venv/bin/python bench/huge_document.py [--sizes-mb 5,20,50,64,1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import ROOT, WORK, report

SAMPLE = ROOT / "examples" / "scifact-sample" / "corpus.jsonl"
BUILD_ONE = """
import json, sys, time
sys.path.insert(0, "bench")
from common import peak_rss_mb
import odqa
started = time.perf_counter()
try:
    path = odqa.build_index(sys.argv[1], sys.argv[2], retrievers=["bm25"], overwrite=True)
    counts = odqa.Manifest.read(path).counts
except odqa.OdqaError as exc:  # past the largest document odqa reads
    counts = {"refused": str(exc).split(": ", 1)[-1]}
seconds = time.perf_counter() - started
print(json.dumps({"seconds": round(seconds, 1), "peak_rss_mb": round(peak_rss_mb()), **counts}))
"""


def write_document(path: Path, megabytes: int) -> int:
    """A one-document corpus of about ``megabytes`` MB of text; its size in bytes."""
    texts = [json.loads(line)["text"] for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    block = "\n\n".join(texts)
    repeats = max(1, megabytes * 1_000_000 // len(block.encode("utf-8")))
    text = "\n\n".join([block] * repeats)
    record = json.dumps({"id": "huge", "title": "One huge document", "text": text})
    path.write_text(record + "\n", encoding="utf-8")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-mb", default="5,20,50,64,1000")
    args = parser.parse_args()
    folder = WORK / "huge"
    folder.mkdir(parents=True, exist_ok=True)
    steps = []
    for megabytes in (int(size) for size in args.sizes_mb.split(",")):
        corpus = folder / f"huge-{megabytes}mb.jsonl"
        size = write_document(corpus, megabytes)
        result = subprocess.run(
            [sys.executable, "-c", BUILD_ONE, str(corpus), str(folder / f"idx-{megabytes}")],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        steps.append({"document_mb": round(size / 1e6, 1), **figures})
        print(json.dumps(steps[-1]), flush=True)
    report("huge_document", {"retrievers": ["bm25"], "steps": steps})


if __name__ == "__main__":
    main()
