"""``make demo`` as a new user meets it: a fresh clone, the first run, then a second one.

Clones this repository's HEAD into a new folder, runs ``make demo`` there twice and times
each run and each of its steps (a step runs from the command ``make`` echoes to the next):
set-up (venv, torch, odqa), the indexes, the searches, the reader's training, ``ask`` and
``eval-qa``, and the peak memory of each run (its largest process's, by GNU time's ``%M``).
The eval-qa table of each run is kept as printed. Only committed work is measured (the
record says whether the tree had other changes).

Run:  python bench/first_demo.py [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import ROOT, report

STEPS = (  # the first matching pattern names a step; the first lines of a run are set-up
    ("setup", r"-m venv |pip install|^touch "),
    ("index", r"/odqa index "),
    ("search", r"/odqa (search|eval) "),
    ("train reader", r"/odqa train reader "),
    ("ask", r"/odqa ask "),
    ("eval-qa", r"/odqa eval-qa "),
)


PEAK = "first-demo-peak-kb"


def step_of(line: str) -> str | None:
    """The step a command ``make`` echoes belongs to (None for any other line)."""
    return next((name for name, pattern in STEPS if re.search(pattern, line)), None)


def timed_run(folder: Path) -> dict:
    """``make demo`` in ``folder``: wall seconds in all and by step, the peak memory of its
    largest process, and eval-qa's table."""
    started = time.perf_counter()
    steps: dict[str, float] = {}
    current, since = "setup", started
    table: list[str] = []
    peak_mb = None
    process = subprocess.Popen(
        ["/usr/bin/time", "-f", f"{PEAK} %M", "make", "demo"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in process.stdout:
        if line.startswith(PEAK):
            peak_mb = round(int(line.split()[1]) / 1024)
        step = step_of(line)
        if step is not None and step != current:
            now = time.perf_counter()
            steps[current] = round(steps.get(current, 0.0) + now - since, 1)
            current, since = step, now
        if re.match(r"^\s+(top-k|\d+)\s", line):
            table.append(line.rstrip())
    if process.wait() != 0:
        raise SystemExit(f"make demo failed in {folder}")
    ended = time.perf_counter()
    steps[current] = round(steps.get(current, 0.0) + ended - since, 1)
    return {
        "seconds": round(ended - started, 1),
        "steps": steps,
        "peak_rss_mb": peak_mb,
        "eval_qa": table,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the clone in place")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="odqa-demo-")) / "odqa"
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    subprocess.run(["git", "clone", "-q", str(ROOT), str(folder)], check=True)
    print(f"timing make demo in {folder} (about 5 minutes)", flush=True)
    figures: dict = {"commit": head, "uncommitted_changes": bool(dirty)}
    figures["load_before"] = os.getloadavg()
    try:
        figures["first"] = timed_run(folder)
        figures["second"] = timed_run(folder)
    finally:
        if not args.keep:
            shutil.rmtree(folder.parent)
    figures["load_after"] = os.getloadavg()
    figures["clone"] = str(folder) if args.keep else None
    report("first_demo", figures)


if __name__ == "__main__":
    main()
