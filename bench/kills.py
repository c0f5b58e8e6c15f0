"""Nothing lost: SIGKILL builds, updates and the directory swap at random moments, and run
two writers at once; after each, the index must load and search, and after the next run no
leftover may remain beside it.

1. A build with ``overwrite`` killed at a random moment (BM25 + dense, 100 sample documents).
2. ``add_documents`` killed at a random moment; then ``delete_documents`` of 20 documents
   followed by ``compact_index``, killed at a random moment (all 20 gone or none).
3. The swap itself: the child pauses inside ``replace_directory`` (after the one-step
   exchange, and on the two-rename path used where the exchange is not available, between
   the renames) and is killed there.
4. Two processes adding 20 documents each to one index at once: all 40 must be there.

Run: .venv/bin/python bench/kills.py [--builds 20 --updates 10 --deletes 10 --swaps 10
     --writers 20]
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, WORK, report

SAMPLE = ROOT / "examples" / "scifact-sample" / "corpus.jsonl"
PYTHON = sys.executable

BUILD = """
import sys, odqa
odqa.build_index(sys.argv[1], sys.argv[2], retrievers=["bm25", "dense"], overwrite=True)
"""
UPDATE = """
import sys, odqa
docs = [odqa.Document(f"{sys.argv[2]}{i}", f"pellagra niacin case {i}") for i in range(20)]
odqa.add_documents(sys.argv[1], docs)
print("done", flush=True)
"""
DELETE = """
import sys, odqa
print("ready", flush=True)
odqa.delete_documents(sys.argv[1], [f"{sys.argv[2]}{i}" for i in range(20)], missing_ok=True)
odqa.compact_index(sys.argv[1])
"""
SWAP = """
import os, sys, time, odqa
from odqa import fs
exchange, rename = fs.exchange, os.rename
def paused_exchange(first, second):
    done = exchange(first, second)
    print("inside", flush=True); time.sleep(30)
    return done
def paused_rename(source, target):
    rename(source, target)
    if ".old-" in str(target):
        print("inside", flush=True); time.sleep(30)
if sys.argv[3] == "exchange":
    fs.exchange = paused_exchange
else:
    fs.exchange = lambda first, second: False
    fs.os.rename = paused_rename
odqa.add_documents(sys.argv[1], [odqa.Document(sys.argv[2], "swap case")])
"""


def leftovers(index: Path) -> list[str]:
    """Anything beside the index but the index and its writer lock."""
    lock = f".{index.name}.lock"
    return sorted(p.name for p in index.parent.iterdir() if p.name not in (index.name, lock))


def loads(index: Path) -> bool:
    """The index opens and answers a BM25 and a dense search."""
    check = (
        "import sys, odqa\n"
        "s = odqa.Searcher(sys.argv[1])\n"
        "assert s.search(['vitamin'], 1, retriever='bm25')[0]\n"
        "assert s.search(['vitamin'], 1, retriever='dense')[0]\n"
    )
    return subprocess.run([PYTHON, "-c", check, str(index)], capture_output=True).returncode == 0


def kill_at_random(args: list[str], low: float, high: float, rng: random.Random) -> float:
    """Start a child, SIGKILL it after a random delay; the delay (or -1 if it finished)."""
    child = subprocess.Popen([PYTHON, "-c", *args], stdout=subprocess.DEVNULL)
    delay = rng.uniform(low, high)
    try:
        child.wait(delay)
        return -1.0
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGKILL)
        child.wait()
        return delay


def kill_when_inside(args: list[str]) -> bool:
    """Start a child that says "inside" in the swap, and SIGKILL it there."""
    child = subprocess.Popen([PYTHON, "-c", *args], stdout=subprocess.PIPE, text=True)
    inside = child.stdout.readline().strip() == "inside"
    child.send_signal(signal.SIGKILL)
    child.wait()
    return inside


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([PYTHON, "-c", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def trial_builds(corpus: Path, index: Path, count: int, rng: random.Random) -> dict:
    """Kills anywhere from start-up to near the end of a build (its duration measured first)."""
    duration = timed([BUILD, str(corpus), str(index)])
    ok = killed = 0
    for _ in range(count):
        if kill_at_random([BUILD, str(corpus), str(index)], 0.5, 0.85 * duration, rng) > 0:
            killed += 1
        loadable = loads(index)
        timed([BUILD, str(corpus), str(index)])
        ok += loadable and not leftovers(index)
    return {
        "trials": count,
        "build_seconds": round(duration, 1),
        "killed_mid_run": killed,
        "loadable_and_clean": ok,
    }


def trial_updates(index: Path, count: int, rng: random.Random) -> dict:
    duration = timed([UPDATE, str(index), "first-"])
    ok = killed = 0
    for trial in range(count):
        if kill_at_random([UPDATE, str(index), f"k{trial}-"], 0.5, 0.85 * duration, rng) > 0:
            killed += 1
        loadable = loads(index)
        subprocess.run([PYTHON, "-c", UPDATE, str(index), f"next{trial}-"], check=True)
        ok += loadable and not leftovers(index)
    return {"trials": count, "killed_mid_run": killed, "loadable_and_clean": ok}


def writing(args: list[str], kill_after: float | None = None) -> float:
    """Run a child that says "ready" once imported; the seconds it then took, or SIGKILL it
    ``kill_after`` seconds after (-1 if it finished first)."""
    child = subprocess.Popen([PYTHON, "-c", *args], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    try:
        child.wait(kill_after)
        return -1.0 if kill_after is not None else time.perf_counter() - started
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGKILL)
        child.wait()
        return kill_after


def trial_deletes(index: Path, count: int, rng: random.Random) -> dict:
    """A delete of 20 documents then a compaction, killed at a random moment of its writing:
    the index holds all 20 or none of them, and the next run finishes the job."""
    import odqa

    def live() -> int:
        return odqa.Manifest.read(index).counts["documents"]

    subprocess.run([PYTHON, "-c", UPDATE, str(index), "dfirst-"], check=True)
    duration = writing([DELETE, str(index), "dfirst-"])
    ok = killed = 0
    for trial in range(count):
        subprocess.run([PYTHON, "-c", UPDATE, str(index), f"d{trial}-"], check=True)
        before = live()
        if writing([DELETE, str(index), f"d{trial}-"], rng.uniform(0, duration)) > 0:
            killed += 1
        whole = live() in (before, before - 20) and loads(index)
        writing([DELETE, str(index), f"d{trial}-"])
        ok += whole and live() == before - 20 and not leftovers(index)
    return {
        "trials": count,
        "write_seconds": round(duration, 2),
        "killed_mid_run": killed,
        "whole_loadable_and_clean": ok,
    }


def trial_swaps(index: Path, count: int) -> dict:
    ok = inside = 0
    for trial in range(count):
        path = "exchange" if trial % 2 == 0 else "two-renames"
        inside += kill_when_inside([SWAP, str(index), f"s{trial}", path])
        loadable = loads(index)
        subprocess.run([PYTHON, "-c", UPDATE, str(index), f"after{trial}-"], check=True)
        ok += loadable and not leftovers(index)
    return {"trials": count, "killed_inside_swap": inside, "loadable_and_clean": ok}


def trial_writers(index: Path, count: int) -> dict:
    import odqa

    ok = 0
    for trial in range(count):
        before = odqa.Manifest.read(index).counts["documents"]
        children = [
            subprocess.Popen([PYTHON, "-c", UPDATE, str(index), f"w{trial}{side}-"])
            for side in "ab"
        ]
        codes = [child.wait() for child in children]
        after = odqa.Manifest.read(index).counts["documents"]
        ok += codes == [0, 0] and after == before + 40
    return {"trials": count, "nothing_lost": ok}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--builds", type=int, default=20)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--deletes", type=int, default=10)
    parser.add_argument("--swaps", type=int, default=10)
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--documents", type=int, default=100, help="Of the sample corpus.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = WORK / "kills"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    corpus = folder / "corpus.jsonl"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    corpus.write_text("".join(lines[: args.documents]), encoding="utf-8")
    index = folder / "indexes" / "idx"
    started = time.perf_counter()
    figures = {
        "documents": args.documents,
        "builds": trial_builds(corpus, index, args.builds, rng),
        "updates": trial_updates(index, args.updates, rng),
        "deletes_and_compactions": trial_deletes(index, args.deletes, rng),
        "swaps": trial_swaps(index, args.swaps),
        "concurrent_writers": trial_writers(index, args.writers),
        "seconds": round(time.perf_counter() - started, 1),
    }
    report("kills", figures)


if __name__ == "__main__":
    main()
