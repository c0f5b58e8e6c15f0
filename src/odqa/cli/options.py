"""The options the commands share, declared once, and the parsers of their values."""

from __future__ import annotations

from typing import Annotated

import typer

from odqa.errors import OdqaError


def split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_numbers(value: str | None, kind: type = float) -> list | None:
    if value is None:
        return None
    try:
        return [kind(part) for part in split_list(value)]
    except ValueError as exc:
        raise OdqaError(f"expected comma-separated numbers, got {value!r}") from exc


Model = Annotated[
    str | None,
    typer.Option(help="Local Hugging Face model folder; default: the embedded all-MiniLM-L6-v2."),
]
Device = Annotated[
    str | None, typer.Option(help="torch device: cpu, cuda, cuda:1 (default: auto).")
]
Precision = Annotated[
    str, typer.Option(help="auto (bf16 on GPU and bf16-capable CPUs), fp32 or bf16.")
]
Retriever = Annotated[
    str | None,
    typer.Option(
        "--retriever",
        "-r",
        help="bm25, dense, colbert, hybrid (default when several are built), "
        "or FIRST+colbert to rerank with ColBERT (e.g. bm25+colbert).",
    ),
]
Exhaustive = Annotated[
    bool, typer.Option(help="ColBERT: exact MaxSim over every passage instead of PLAID.")
]
Ncells = Annotated[
    int | None,
    typer.Option(help="ColBERT/PLAID: centroids probed per query token (default by k: 1, 2, 4)."),
]
Ndocs = Annotated[
    int | None,
    typer.Option(
        help="ColBERT/PLAID: passages kept by centroid scores; a quarter get exact MaxSim "
        "(default by k: 256, 1024, 4096). Raise it for closer agreement with --exhaustive."
    ),
]
CentroidScoreThreshold = Annotated[
    float | None,
    typer.Option(help="ColBERT/PLAID: prune centroids scoring below this (default by k: 0.5-0.4)."),
]
Fusion = Annotated[str, typer.Option(help="Hybrid fusion: zscore (default), minmax or rrf.")]
Weights = Annotated[
    str | None, typer.Option(help="Hybrid weights in the index's retriever order, e.g. 0.5,0.5.")
]


def parse_articles(value: str | None) -> range | None:
    """``"0-37"`` (inclusive) or ``"5"`` as a range of article indexes."""
    if value is None:
        return None
    first, _, last = value.partition("-")
    try:
        start, stop = int(first), int(last or first) + 1
    except ValueError as exc:
        raise OdqaError(f"--articles takes FIRST-LAST or N (0-based), got {value!r}") from exc
    if start < 0 or stop <= start:
        raise OdqaError(f"--articles takes FIRST-LAST with 0 <= FIRST <= LAST, got {value!r}")
    return range(start, stop)
