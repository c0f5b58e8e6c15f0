"""What ``odqa tune`` searches over: one :class:`Candidate` per trial, and its settings.

The space: the retrievers fused (every non-empty subset of the index's), the fusion method
and a weight in [0.05, 1] for each retriever fused (when there are several), PLAID's three
knobs from a small grid (when ColBERT is fused; each value may also be "by k", PLAID's own
default), and the passages the reader reads (question answering only). The grid keeps the
number of distinct ColBERT searches small: each is run once and replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from odqa.index.settings import PlaidSettings
from odqa.retrieve.fusion import DEFAULT_METHOD, METHODS

PLAID_KIND = "colbert"
"""The retriever kind whose search takes PLAID's knobs."""
PLAID_GRID: dict[str, tuple[Any, ...]] = {
    "ncells": (None, 1, 2, 4),
    "centroid_score_threshold": (None, 0.4, 0.45, 0.5),
    "ndocs": (None, 256, 1024, 4096),
}
WEIGHT_RANGE = (0.05, 1.0)
READER_KS = (1, 2, 3, 5, 10)


@dataclass(frozen=True)
class Candidate:
    """One point of the space: ``retrievers`` fused with ``fusion`` and ``weights`` (one each),
    ColBERT searched with ``plaid``, the reader reading ``reader_k`` passages."""

    retrievers: tuple[str, ...]
    fusion: str = DEFAULT_METHOD
    weights: tuple[float, ...] = ()
    plaid: PlaidSettings = field(default_factory=PlaidSettings)
    reader_k: int | None = None

    def search_settings(self, index_retrievers: Sequence[str]) -> dict[str, Any]:
        """The ``search`` part of a settings file: a single retriever, or the hybrid with a
        weight per index retriever (0 leaves one out)."""
        settings: dict[str, Any] = {}
        if len(self.retrievers) == 1:
            settings["retriever"] = self.retrievers[0]
        else:
            chosen = dict(zip(self.retrievers, self.weights, strict=True))
            settings["retriever"] = "hybrid"
            settings["fusion"] = self.fusion
            settings["weights"] = [round(chosen.get(name, 0.0), 4) for name in index_retrievers]
        if PLAID_KIND in self.retrievers:
            settings.update(
                ncells=self.plaid.ncells,
                centroid_score_threshold=self.plaid.centroid_score_threshold,
                ndocs=self.plaid.ndocs,
            )
        return settings


class Space:
    """The space over an index with ``retrievers`` (in the index's order); ``tune_plaid``
    unless ColBERT searches exhaustively; ``reader_ks`` when a reader is scored."""

    def __init__(
        self,
        retrievers: Sequence[str],
        *,
        tune_plaid: bool = True,
        reader_ks: Sequence[int] | None = None,
    ) -> None:
        self.retrievers = tuple(retrievers)
        self.tune_plaid = tune_plaid
        self.reader_ks = tuple(sorted(set(reader_ks))) if reader_ks else None
        self.subsets = [
            ",".join(subset)
            for size in range(len(self.retrievers), 0, -1)
            for subset in combinations(self.retrievers, size)
        ]

    def suggest(self, trial: Any) -> Candidate:
        """The candidate an Optuna ``trial`` draws."""
        chosen = tuple(trial.suggest_categorical("retrievers", self.subsets).split(","))
        fusion, weights = DEFAULT_METHOD, (1.0,)
        if len(chosen) > 1:
            fusion = trial.suggest_categorical("fusion", METHODS)
            weights = tuple(trial.suggest_float(f"weight_{name}", *WEIGHT_RANGE) for name in chosen)
        plaid = PlaidSettings()
        if self.tune_plaid and PLAID_KIND in chosen:
            plaid = PlaidSettings(
                **{
                    name: trial.suggest_categorical(name, values)
                    for name, values in PLAID_GRID.items()
                }
            )
        reader_k = trial.suggest_categorical("reader_k", self.reader_ks) if self.reader_ks else None
        return Candidate(chosen, fusion, weights, plaid, reader_k)

    def default_params(self, reader_k: int | None = None) -> dict[str, Any]:
        """The Optuna parameters of odqa's defaults (every retriever, z-score, equal weights,
        PLAID by k): trial 0, so that the best found is never worse on the dev set."""
        params: dict[str, Any] = {"retrievers": self.subsets[0]}
        if len(self.retrievers) > 1:
            params["fusion"] = DEFAULT_METHOD
            params.update({f"weight_{name}": WEIGHT_RANGE[1] for name in self.retrievers})
        if self.tune_plaid and PLAID_KIND in self.retrievers:
            params.update(dict.fromkeys(PLAID_GRID))
        if self.reader_ks:
            params["reader_k"] = reader_k if reader_k in self.reader_ks else self.reader_ks[0]
        return params
