"""Shared by the benchmark scripts: data paths, machine description, result files."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ODQA_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "build" / "bench"


def machine() -> dict:
    """What the figures were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB: Linux's ``VmHWM``, the high-water
    mark of this program alone. ``getrusage``'s ``ru_maxrss`` is kept across ``exec``, so in
    a process a bench starts it would count what the bench itself held when it forked."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) / 1024


def report(name: str, figures: dict) -> None:
    """Print one JSON line and keep it under bench/results/NAME.json."""
    record = {
        "bench": name,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        **figures,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record)
    (RESULTS / f"{name}.json").write_text(line + "\n", encoding="utf-8")
    print(line)


def run_odqa(src: Path, *args: str) -> tuple[str, float]:
    """Run ``odqa ARGS`` on the code in ``src``; its stdout and wall seconds."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "odqa.cli", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"odqa {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout, time.perf_counter() - started


def percentiles(milliseconds: list[float]) -> dict:
    """p50 and p95 of per-query times in milliseconds, as the benches report them."""
    return {
        "p50_ms": round(float(np.median(milliseconds)), 2),
        "p95_ms": round(float(np.percentile(milliseconds, 95)), 2),
    }
