"""Load test of ``odqa serve`` on BEIR SciFact: POST /search at concurrency 1, 8 and 32 for
BM25, dense and hybrid — requests/second, p50/p99 latency, errors — then the server's memory
over a long run (10,000 requests by default), sampled every thousand requests.

Builds nothing: it serves the index bench/retrieval_scifact.py builds (build/bench/scifact),
starts ``odqa serve`` on loopback as a subprocess and drives it with aiohttp, cycling through
the SciFact test queries. Every cell stops after --seconds or --requests, whichever comes
first; the memory run after --memory-requests or --memory-seconds. Exits 1 on any error.

Run: .venv/bin/python bench/serve_load.py [--seconds 20] [--memory-requests 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np

from common import DATA, WORK, report
from odqa.corpus import read_qrels, read_queries

SCIFACT = DATA / "beir-scifact"
K = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (VmRSS of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_server(index: Path, port: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "odqa.cli", "serve", str(index), "--port", str(port)]
    with log.open("wb") as out:
        server = subprocess.Popen([*command, "--no-access-log"], stdout=out, stderr=out)
    return server


async def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"odqa serve exited with {server.returncode}")
            try:
                async with session.get(f"{url}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"odqa serve did not answer /health within {timeout:.0f} s")


async def drive(
    url: str,
    queries: list[str],
    retriever: str,
    concurrency: int,
    seconds: float,
    requests: int,
    on_done=None,
) -> dict:
    """``concurrency`` clients searching until ``seconds`` pass or ``requests`` complete."""
    latencies: list[float] = []
    errors: list[str] = []
    cycle = itertools.cycle(queries)
    started_count = itertools.count(1)
    deadline = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline and next(started_count) <= requests:
            body = {"query": next(cycle), "k": K, "retriever": retriever}
            started = time.perf_counter()
            try:
                async with session.post(f"{url}/search", json=body) as response:
                    await response.read()
                    ok = response.status == 200
                    if not ok:
                        errors.append(f"{response.status}")
            except aiohttp.ClientError as exc:
                ok = False
                errors.append(type(exc).__name__)
            if ok:
                latencies.append(time.perf_counter() - started)
            if on_done is not None:
                on_done(len(latencies) + len(errors))

    connector = aiohttp.TCPConnector(limit=concurrency)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    millis = np.asarray(latencies) * 1000
    return {
        "retriever": retriever,
        "concurrency": concurrency,
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(millis, 50)), 2) if len(millis) else None,
        "p99_ms": round(float(np.percentile(millis, 99)), 2) if len(millis) else None,
    }


async def memory_run(url: str, pid: int, queries: list[str], args: argparse.Namespace) -> dict:
    """RSS before, every 1,000 requests, and after a long hybrid run at concurrency 8. The
    first thousand requests may still grow caches (allocator pools for new batch shapes);
    flat memory means no growth after them."""
    samples = [round(rss_mb(pid), 1)]

    def sample(done: int) -> None:
        if done % 1000 == 0:
            samples.append(round(rss_mb(pid), 1))

    figures = await drive(
        url, queries, "hybrid", 8, args.memory_seconds, args.memory_requests, on_done=sample
    )
    samples.append(round(rss_mb(pid), 1))
    return {
        **figures,
        "rss_mb_samples": samples,
        "rss_mb_before": samples[0],
        "rss_mb_after": samples[-1],
        "rss_growth_mb": round(samples[-1] - samples[0], 1),
        "rss_growth_after_first_1000_mb": (
            round(samples[-1] - samples[1], 1) if len(samples) > 2 else None
        ),
    }


async def run(args: argparse.Namespace, url: str, pid: int, queries: list[str]) -> dict:
    cells = []
    for retriever in args.retrievers.split(","):
        await drive(url, queries, retriever, 1, 10, 5)  # warm-up, not reported
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            cell = await drive(url, queries, retriever, concurrency, args.seconds, args.requests)
            print(cell, file=sys.stderr)
            cells.append(cell)
    memory = await memory_run(url, pid, queries, args)
    print({"memory": memory}, file=sys.stderr)
    return {"cells": cells, "memory": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, default=WORK / "scifact")
    parser.add_argument("--retrievers", default="bm25,dense,hybrid")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=20, help="Time limit of each cell.")
    parser.add_argument("--requests", type=int, default=100_000, help="Request cap per cell.")
    parser.add_argument("--memory-requests", type=int, default=10_000)
    parser.add_argument("--memory-seconds", type=float, default=600)
    args = parser.parse_args()
    if not (args.index / "manifest.json").exists():
        sys.exit(f"no index at {args.index}: run bench/retrieval_scifact.py first")
    judged = read_qrels(SCIFACT / "qrels" / "test.tsv")
    queries = [query.text for query in read_queries(SCIFACT) if query.id in judged]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    WORK.mkdir(parents=True, exist_ok=True)
    server = start_server(args.index, port, WORK / "serve_load.log")
    try:
        asyncio.run(wait_healthy(url, server))
        figures = asyncio.run(run(args, url, server.pid, queries))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    errors = sum(cell["errors"] for cell in figures["cells"]) + figures["memory"]["errors"]
    report(
        "serve_load",
        {
            "index": str(args.index),
            "queries": len(queries),
            "k": K,
            "seconds_per_cell": args.seconds,
            "requests_per_cell_cap": args.requests,
            **figures,
            "errors": errors,
        },
    )
    if errors:
        sys.exit(f"{errors} requests failed; see the cells' error_kinds and {WORK}/serve_load.log")


if __name__ == "__main__":
    main()
