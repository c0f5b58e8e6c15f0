"""``SearchOptions``: everything a search can be told, in one value shared by every face."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from odqa.errors import OdqaError
from odqa.index.settings import PlaidSettings
from odqa.retrieve.fusion import DEFAULT_METHOD, METHODS


@dataclass(frozen=True)
class SearchOptions:
    """How an index is searched.

    ``retriever`` is the one used when a search names none (default: hybrid when the index
    has several). ``fusion`` and ``weights`` shape the hybrid (weights in the index's
    retriever order). ``exhaustive`` makes ColBERT score every passage exactly; ``plaid``
    tunes PLAID's candidate stages. ``nprobe`` is the inverted lists a dense IVF index probes
    per query (None: the number the index recorded at build, 32 by default; flat and HNSW
    indexes have none). ``model`` overrides the query encoder (it must be the index's model);
    ``device`` and ``precision`` follow :mod:`odqa.models.device`.
    """

    retriever: str | None = None
    fusion: str = DEFAULT_METHOD
    weights: tuple[float, ...] | None = None
    exhaustive: bool = False
    plaid: PlaidSettings = field(default_factory=PlaidSettings)
    nprobe: int | None = None
    model: str | None = None
    device: str | None = None
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.fusion not in METHODS:
            raise OdqaError(f"fusion must be one of {METHODS}, got {self.fusion!r}")
        if self.weights is not None:
            weights = tuple(float(weight) for weight in self.weights)
            if not weights or not all(math.isfinite(w) and w >= 0 for w in weights):
                raise OdqaError(f"weights must be finite and non-negative, got {list(weights)}")
            object.__setattr__(self, "weights", weights)
        if self.plaid is None:
            object.__setattr__(self, "plaid", PlaidSettings())
        if self.nprobe is not None and self.nprobe < 1:
            raise OdqaError(f"nprobe must be at least 1, got {self.nprobe}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(item.name for item in fields(cls))


NULLABLE = ("retriever", "weights", "nprobe", "model", "device")
"""Fields whose None means something (the index's or the machine's default); a None given
for any other field keeps the default."""


def search_options(options: SearchOptions | None, settings: dict) -> SearchOptions:
    """``options`` (default: the defaults) with ``settings`` (its fields) put over it."""
    unknown = sorted(set(settings) - set(SearchOptions.names()))
    if unknown:
        raise OdqaError(f"unknown search settings {unknown}; known: {list(SearchOptions.names())}")
    base = options or SearchOptions()
    values = {name: getattr(base, name) for name in SearchOptions.names()}
    values.update({name: value for name, value in settings.items() if value is not None})
    values.update(
        {name: None for name, value in settings.items() if value is None and name in NULLABLE}
    )
    weights = values["weights"]
    if isinstance(weights, Sequence) and not isinstance(weights, tuple):
        values["weights"] = tuple(weights)
    return SearchOptions(**values)
