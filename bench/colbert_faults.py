"""A ColBERT build on the user's resumable path, then killed and starved of disk.

The realistic collection (``bench/realistic_collection.py``) is written as a user would
have it after ``odqa encode``: ``corpus.jsonl`` (each passage a document: its sentences'
text, or a planted SciFact document) and an odqa-vectors folder of its token vectors. Then,
each with the real CLI (``odqa index corpus.jsonl INDEX --retrievers colbert
--embeddings-from vectors``) in a child process:

1. a full build: wall time against the plan line's estimate, the child's peak RSS, bytes
   per token of the ColBERT files and of the whole index folder;
2. the same build with ``--overwrite`` over that index, SIGKILLed when its progress bar
   reaches each ``--kills`` fraction: the old index must still load and give the same
   top 10 for SciFact's test queries; what the kill left beside it is listed, and the next
   run must have removed it;
3. with ``--disk-full``: the old index copied into a tmpfs with room for it and a share of
   a new one, and the build pointed there with ``--overwrite``: it must fail with one line
   (no traceback), and the old index must still answer the same.

    python bench/colbert_faults.py --size 100000 --kills 0.3 0.6 0.9 --disk-full
    python bench/colbert_faults.py --size 1000000 --kills 0.9   # about 1.5 h on 2 cores
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common import WORK, report
from odqa.corpus import read_qrels
from odqa.encode.vectors import VectorsWriter
from odqa.index.late import LateIndex
from odqa.models.colbert import ColBERTEncoder
from realistic_collection import (
    MODEL,
    SCIFACT,
    VECTORS,
    RealisticCollection,
    scifact_documents,
    sentence_pool,
)

ODQA = [sys.executable, "-c", "import sys; from odqa.cli import main; sys.exit(main())"]
WRITE_BLOCK = 10_000  # passages composed and written at once
POLL_S = 0.5
PROGRESS = re.compile(r"indexing:\s*(\d+)%")


def chunk_tokens(collection: RealisticCollection) -> int:
    """A window no passage of the collection outgrows, so each document is one passage."""
    return int(max(collection.planted_lens.max(), collection.sentence_lens.max() * 12)) + 64


def prepare(size: int, folder: Path) -> dict:
    """Write ``corpus.jsonl`` and ``vectors/`` for a collection of ``size`` (once)."""
    corpus, vectors = folder / "corpus.jsonl", folder / "vectors"
    collection = RealisticCollection(size)
    window = chunk_tokens(collection)
    if (vectors / "vectors.json").exists() and corpus.exists():
        return {"chunk_tokens": window}
    folder.mkdir(parents=True, exist_ok=True)
    qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
    pool = sentence_pool({doc for docs in qrels.values() for doc in docs})
    planted = {doc["_id"]: f"{doc['title']} {doc['text']}".strip() for doc in scifact_documents()}
    encoder = ColBERTEncoder(MODEL)
    settings = encoder.describe()
    chunking = {"tokens": window, "overlap": 0, "tokenizer": settings["model"]}
    started = time.perf_counter()
    with (
        open(corpus, "w", encoding="utf-8") as lines,
        VectorsWriter(vectors, "colbert", settings, encoder.dim, "float16", chunking) as out,
    ):
        for first in range(0, size, WRITE_BLOCK):
            count = min(WRITE_BLOCK, size - first)
            parts = collection.compose(first, count)
            ids = []
            for pid, (kind, picks) in zip(range(first, first + count), parts, strict=True):
                doc_id = collection.planted_ids[picks[0]] if kind == "planted" else f"p{pid}"
                text = planted[doc_id] if kind == "planted" else " ".join(pool[i] for i in picks)
                lines.write(json.dumps({"id": doc_id, "text": text}) + "\n")
                ids.append((doc_id, 0))
            tokens, doclens = collection.vectors(parts)
            out.add(ids, tokens.half().numpy(), doclens.numpy())
            print(f"written {first + count:,} / {size:,} passages", file=sys.stderr, flush=True)
    return {"chunk_tokens": window, "prepare_s": round(time.perf_counter() - started, 1)}


def index_command(folder: Path, index: Path, window: int, overwrite: bool) -> list[str]:
    command = [
        *ODQA, "index", str(folder / "corpus.jsonl"), str(index),
        "--retrievers", "colbert", "--colbert-model", str(MODEL),
        "--embeddings-from", str(folder / "vectors"),
        "--chunk-tokens", str(window), "--chunk-overlap", "0",
    ]  # fmt: skip
    return [*command, "--overwrite"] if overwrite else command


def run(command: list[str], log: Path, kill_at: float | None = None) -> dict:
    """Run the CLI; SIGKILL it once its progress bar reaches ``kill_at`` (a fraction). Wall
    time, exit code, the child's peak RSS (VmHWM, polled), the plan line, the last stderr
    line and the progress when killed."""
    started = time.perf_counter()
    progress = 0.0
    with open(log, "w", encoding="utf-8") as err:
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        peak = 0
        while child.poll() is None:
            peak = max(peak, vm_hwm_kb(child.pid))
            progress = last_progress(log)
            if kill_at is not None and progress >= kill_at:
                child.send_signal(signal.SIGKILL)
                child.wait()
                break
            time.sleep(POLL_S)
    text = log.read_text(encoding="utf-8", errors="replace")
    lines = [line for line in re.split(r"[\r\n]+", text) if line.strip()]
    plan = next((line for line in lines if "passages: needs about" in line), "")
    return {
        "wall_s": round(time.perf_counter() - started, 1),
        "returncode": child.returncode,
        "peak_rss_mb": round(peak / 1024),
        "plan": plan.strip(),
        "last_line": lines[-1].strip() if lines else "",
        "traceback": "Traceback" in text,
        "progress": progress,
    }


def last_progress(log: Path) -> float:
    """The fraction the progress bar in ``log`` shows last ("indexing:  90%|...")."""
    with open(log, "rb") as handle:
        handle.seek(max(0, log.stat().st_size - 4096))
        tail = handle.read().decode("utf-8", errors="replace")
    found = PROGRESS.findall(tail)
    return int(found[-1]) / 100 if found else 0.0


def vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@functools.cache
def test_queries() -> tuple[torch.Tensor, torch.Tensor]:
    """SciFact's test queries' cached vectors and mask (read once: the cache is 0.9 GB)."""
    cached = torch.load(VECTORS)
    return cached["queries"], cached["qmask"]


def top10(index: Path) -> np.ndarray:
    """PLAID's top 10 for SciFact's test queries in ``index``."""
    pids, _ = LateIndex(index / "colbert").search(*test_queries(), 10)
    return np.asarray(pids)


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def leftovers(index: Path) -> list[str]:
    """What runs left beside ``index`` but its lock file (every run makes it again)."""
    return sorted(path.name for path in index.parent.glob(f".{index.name}.*-*"))


def kills(folder: Path, index: Path, window: int, fractions: list[float]) -> list:
    """SIGKILL an overwriting build at each fraction of its progress; check what is left."""
    before = top10(index)
    trials, left = [], []
    for fraction in fractions:
        log = folder / f"kill_{fraction}.log"
        command = index_command(folder, index, window, overwrite=True)
        outcome = run(command, log, kill_at=fraction)
        cleaned = not set(left) & set(leftovers(index))  # the last kill's, after this run
        left = leftovers(index)
        same = bool(np.array_equal(top10(index), before))
        trials.append(
            {
                "fraction": fraction,
                "killed_at_s": outcome["wall_s"],
                "progress_at_kill": outcome["progress"],
                "last_line": outcome["last_line"][-160:],
                "old_index_same_top10": same,
                "left_beside": left,
                "left_mb": round(sum(folder_bytes(index.parent / n) for n in left) / 2**20),
                "previous_leftovers_removed": cleaned,
            }
        )
        print(json.dumps(trials[-1]), file=sys.stderr, flush=True)
    return trials


def disk_full(folder: Path, index: Path, window: int) -> dict:
    """The build over a copy of the index on a tmpfs with room for a third of a new one."""
    mount = folder / "tmpfs"
    mount.mkdir(exist_ok=True)
    size = folder_bytes(index)
    room = int(size * 1.35) + (64 << 20)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={room}", "tmpfs", str(mount)], check=True)
    try:
        target = mount / index.name
        shutil.copytree(index, target)
        before = top10(target)
        outcome = run(index_command(folder, target, window, True), folder / "disk_full.log")
        return {
            "tmpfs_mb": room >> 20,
            "index_mb": size >> 20,
            "returncode": outcome["returncode"],
            "wall_s": outcome["wall_s"],
            "last_line": outcome["last_line"][-300:],
            "traceback": outcome["traceback"],
            "plan": outcome["plan"],
            "old_index_same_top10": bool(np.array_equal(top10(target), before)),
            "left_beside": leftovers(target),
        }
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--kills", type=float, nargs="*", default=[0.3, 0.6, 0.9])
    parser.add_argument("--disk-full", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="keep an index built before")
    parser.add_argument("--prepare-only", action="store_true", help="write corpus and vectors")
    parser.add_argument("--tag", default="", help="appended to the result's name")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    folder = WORK / f"colbert_user_{args.size}"
    figures: dict = {"size": args.size, **prepare(args.size, folder)}
    if args.prepare_only:
        return
    window = figures["chunk_tokens"]
    index = folder / "index"
    if not (args.reuse and (index / "colbert" / "late.json").exists()):
        shutil.rmtree(index, ignore_errors=True)
        full = run(index_command(folder, index, window, overwrite=False), folder / "full.log")
        (folder / "full.json").write_text(json.dumps(full) + "\n", encoding="utf-8")
    full = json.loads((folder / "full.json").read_text(encoding="utf-8"))
    meta = json.loads((index / "colbert" / "late.json").read_text(encoding="utf-8"))
    tokens = meta["num_tokens"]
    figures |= {
        "tokens": tokens,
        "build": full,
        "colbert_bytes_per_token": round(folder_bytes(index / "colbert") / tokens, 2),
        "index_bytes_per_token": round(folder_bytes(index) / tokens, 2),
    }
    print(json.dumps(figures), file=sys.stderr, flush=True)
    if args.kills:
        figures["kills"] = kills(folder, index, window, args.kills)
    if args.disk_full:
        figures["disk_full"] = disk_full(folder, index, window)
    report(f"colbert_faults_{args.size}{'_' + args.tag if args.tag else ''}", figures)


if __name__ == "__main__":
    main()
