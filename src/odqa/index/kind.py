"""The seam every retriever kind (bm25, dense, colbert) fits: one module a kind.

A kind is three classes, each an abstract base here, so that a kind missing a verb is
refused when it is registered (:func:`odqa.index.registry.kind_named`), naming the verb:

- :class:`RetrieverKind`: its name, folder and settings (:class:`KindSettings`, which also
  declare its command-line options); the encoder it needs (:meth:`RetrieverKind.encoder`:
  the encode stage encodes for it; a kind never loads an encoder to build); its builder; how
  passages are added to and deleted from it; how it is opened for search;
- :class:`KindBuilder`: its share of a build, fed the same :class:`EncodedBatch` es as every
  other kind;
- :class:`RowSearcher`: the kind opened for search (``search`` with the ``allowed`` rows of
  a filter).

Build (:mod:`odqa.index.builder`), update (:mod:`odqa.index.updates`) and search
(:class:`odqa.retrieve.Searcher`) loop over the kinds an index holds and never branch on
their names; adding a kind means adding one module and naming it in
:mod:`odqa.index.catalog`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from odqa.corpus import Document
from odqa.encode import EncodedBatch, Encoder, EncodeStage
from odqa.index.settings import KindSettings

if TYPE_CHECKING:
    from odqa.index.identify import CollectionLanguage
    from odqa.index.late import PlaidSettings
    from odqa.index.options import BuildOptions

Record = dict[str, Any]
"""What the manifest records about one kind (``manifest.retrievers[name]``): its settings
(:meth:`KindSettings.record`), its encoder's description, and what the build found."""


@dataclass(frozen=True)
class Runtime:
    """Where and how encoders run while an index is updated or searched."""

    device: str | None = None
    precision: str = "auto"
    model: str | None = None
    """A query-encoder override given at search time (it must be the index's model)."""
    show_progress: bool = False
    """Long work of an update (a re-clustering) on a progress bar."""


@dataclass(frozen=True)
class BuildStart:
    """What a builder is given before the first batch: the index folder being written, the
    corpus's first documents (as read, empty ones included), the encode stage (to add a step
    of the kind's own, :meth:`EncodeStage.then`, or encode a sample), and ``sample(size,
    seed)``: that many (or ``size(count)``) of the corpus's ``count`` non-empty documents
    chosen by a seeded generator, with their numbers, and ``count``; the collection's
    ``language`` (:mod:`odqa.index.identify`)."""

    folder: Path
    first: Sequence[Document]
    stage: EncodeStage
    sample: Callable[[int | Callable[[int], int], int], tuple[dict[int, Document], int]]
    language: CollectionLanguage | None = None


class SearchSettings(Protocol):
    """The search options a kind reads when opened (``odqa.retrieve.SearchOptions``)."""

    model: str | None
    device: str | None
    precision: str
    exhaustive: bool
    plaid: PlaidSettings
    nprobe: int | None


class RowSearcher(ABC):
    """A kind opened for search: passage rows and scores for query texts.

    ``search`` returns arrays of shape ``(len(queries), <= k)``; row -1 means no match.
    ``allowed``, a boolean per passage row, limits the search to those rows before ranking:
    the top ``k`` come from them alone. The caller passes the collection's live rows (and a
    filter's) whenever anything was deleted, so a deleted row never comes back.
    """

    @abstractmethod
    def search(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class Footprint:
    """What one kind's share of a build will take: bytes on disk, peak bytes in memory."""

    disk: int
    memory: int


class KindBuilder(ABC):
    """One kind's share of a build, fed the same batches as every other kind."""

    @abstractmethod
    def start(self, start: BuildStart) -> None:
        """Called once, before any batch (see :class:`BuildStart`)."""

    @abstractmethod
    def add(self, batch: EncodedBatch) -> None:
        """A batch of passages, with this kind's encoding in ``batch.encoded[name]``."""

    @abstractmethod
    def footprint(self, passages: int) -> Footprint:
        """Disk and memory for ``passages`` passages in all, extrapolated from the batches
        added so far (at least one)."""

    @abstractmethod
    def finish(self) -> Record:
        """Write the kind's files; returns what the manifest records about it."""


class RetrieverKind(ABC):
    """One retriever kind: its name, folder, settings, encoder and verbs. A kind that
    ``reranks`` opens a :class:`RowSearcher` that also has ``rescore(query, rows, k)``
    (exact scores of given rows)."""

    name: ClassVar[str]
    folder: ClassVar[str]
    settings: ClassVar[type[KindSettings]]
    builder_class: ClassVar[type[KindBuilder]]
    searcher_class: ClassVar[type[RowSearcher]]
    reranks: ClassVar[bool] = False

    def encoder(self, settings: KindSettings, options: BuildOptions) -> Encoder | None:
        """What encodes this kind's passages in a build (None: it reads their texts)."""
        return None

    def recorded_encoder(self, index: Path, record: Record, runtime: Runtime) -> Encoder | None:
        """The encoder the index recorded for this kind, for an update (None: texts)."""
        return None

    @abstractmethod
    def builder(self, settings: KindSettings, options: BuildOptions) -> KindBuilder: ...

    @abstractmethod
    def add(
        self, index: Path, record: Record, batch: EncodedBatch, runtime: Runtime, first_row: int
    ) -> dict:
        """Add passages already appended to the index's collection as rows ``first_row`` on
        (their encoding, by :meth:`recorded_encoder`, in ``batch.encoded[name]``), writing
        new files only (the index's are hard-linked into the update's copy); may update
        ``record`` in place; returns what the update report should say (may be empty)."""

    @abstractmethod
    def delete(self, index: Path, record: Record, rows: np.ndarray) -> dict | None:
        """Passage ``rows`` were marked deleted in the collection (``deleted.npy``); returns
        what the update report should say, if anything."""

    def compact(self, index: Path, record: Record) -> dict:
        """Merge what updates left apart (segments, deleted rows), when the user asks
        (``odqa compact``); returns what the report should say. Nothing by default."""
        return {}

    def compact_bytes(self, index: Path, record: Record) -> int:
        """About how many bytes :meth:`compact` writes (the old files stay until the
        compacted index is swapped in): checked against the free disk first."""
        return 0

    @abstractmethod
    def open(self, index: Path, record: Record, options: SearchSettings) -> RowSearcher: ...
