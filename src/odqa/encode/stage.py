"""The encode stage: documents in, batches of passages with every kind's encoding out.

:class:`EncodeStage` cuts each batch of documents into passages once (its :class:`Cutter`) and
gives each kind that needs it its encoding, from one of three sources behind one interface:

- encoded here, by the kind's :class:`Encoder` (on its device, with its precision rule);
- encoded on a Ray cluster (``ray``), with the same encoder, shipped to the workers;
- read from a precomputed vectors folder (:mod:`odqa.encode.vectors`), checked to be this
  build's passages, one by one.

A kind may add a step of its own applied where its encoding is made (:meth:`EncodeStage.then`:
ColBERT compresses its token vectors with the codec it trained, on the workers too). A kind
that trains on a sample first (:meth:`EncodeStage.sample`) has it encoded here; when the main
pass encodes here too, those passages' encodings are kept (token vectors in float16) and
taken again, not encoded twice.

``odqa encode`` writes what a pipeline yields into a vectors folder; ``odqa index`` feeds it
to the kinds: one code path, by construction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from odqa.corpus import Document, Passage, indexable_text, kept_of
from odqa.encode import cluster
from odqa.encode.cluster import ClusterShape, RaySettings, Step
from odqa.encode.cutting import Cutter
from odqa.encode.encoders import TOKENS, Encoded, Encoder, TokenVectors
from odqa.encode.vectors import VectorsCursor, VectorsFolder
from odqa.errors import OdqaError


@dataclass(frozen=True)
class EncodedBatch:
    """Documents (non-empty, in corpus order), their passages, the passages' texts (what BM25
    and the encoders read: title, then text) and each kind's encoding of them, by kind."""

    documents: Sequence[Document]
    passages: Sequence[Passage]
    texts: Sequence[str]
    encoded: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Encoding:
    """One kind's encoding: by ``encoder`` (here or on Ray), or read from ``precomputed``
    (vectors ``encoder`` made, which the folder is checked to say)."""

    encoder: Encoder
    precomputed: VectorsFolder | None = None


class EncodeStage:
    """Batches of documents to :class:`EncodedBatch` es (see the module's text)."""

    def __init__(
        self,
        cutter: Cutter,
        encodings: Mapping[str, Encoding],
        ray: RaySettings | None = None,
    ) -> None:
        self.cutter, self.ray = cutter, ray
        self.encodings = dict(encodings)
        self._then: dict[str, Callable[[Any], Any]] = {}
        self._kept: dict[str, dict[int, tuple[str, list[Encoded]]]] = {}
        self.shape: ClusterShape | None = None

    def then(self, name: str, step: Callable[[Any], Any]) -> None:
        """Apply ``step`` (picklable) to kind ``name``'s encodings where they are made."""
        self._then[name] = step

    def sample(self, name: str, documents: Mapping[int, Document]) -> Encoded:
        """Kind ``name``'s encoding of the passages of ``documents`` (by their number among
        the corpus's non-empty documents), from its source: read from the precomputed
        folder, else encoded here. Encoded here for a main pass that encodes here too, the
        encodings are kept and taken again by it; else they will be made again, and the
        truncations counted then (the sample's count is 0)."""
        encoding = self.encodings[name]
        if encoding.precomputed is not None:
            vectors, doclens = encoding.precomputed.rows_of({d.id for d in documents.values()})
            return TokenVectors(vectors, doclens) if encoding.encoder.output == TOKENS else vectors
        numbered = sorted(documents.items())
        passages = self.cutter.cut([document for _, document in numbered])
        encoded = encoding.encoder.encode([indexable_text(passage) for passage in passages])
        if self.ray is not None:
            return replace(encoded, truncated=0) if isinstance(encoded, TokenVectors) else encoded
        number_of = {document.id: number for number, document in numbered}
        kept = self._kept.setdefault(name, {})
        for passage, part in zip(passages, pieces(encoded, half=True), strict=True):
            number = number_of[passage.doc_id]
            kept.setdefault(number, (passage.doc_id, []))[1].append(part)
        return encoded

    @contextlib.contextmanager
    def running(
        self, say: Callable[[str], None] = print
    ) -> Iterator[Callable[[Iterable[list[Document]]], Iterator[tuple[list, EncodedBatch]]]]:
        """A function from batches of documents (as read) to each batch and its
        :class:`EncodedBatch`, in order; on a Ray cluster while the context lasts."""
        cursors = {
            name: encoding.precomputed.cursor()
            for name, encoding in self.encodings.items()
            if encoding.precomputed is not None
        }
        steps = {
            name: Step(encoding.encoder.pinned(), self._then.get(name))
            for name, encoding in self.encodings.items()
            if encoding.precomputed is None
        }
        with contextlib.ExitStack() as stack:
            if self.ray is None:
                prepared = self._here(steps)
            else:
                self.shape = cluster.connect(self.ray)
                say(f"encoding on a {self.shape.describe()}")
                pool = cluster.WorkerPool(self.shape, self.ray, self.cutter, steps)
                stack.enter_context(pool)
                prepared = lambda batches: cluster.prepared_batches(pool, batches)  # noqa: E731
            yield lambda batches: self._joined(prepared(batches), cursors)
        for cursor in cursors.values():
            cursor.close()

    def _here(self, steps: dict[str, Step]):
        def prepare(batches: Iterable[list[Document]]) -> Iterator[tuple[list, Any]]:
            first = 0
            for batch in batches:
                kept = kept_of(batch)
                passages = self.cutter.cut(kept)
                texts = [indexable_text(passage) for passage in passages]
                numbers = {document.id: first + i for i, document in enumerate(kept)}
                first += len(kept)
                encoded = (
                    {
                        name: self._encoded_here(name, step, passages, texts, numbers)
                        for name, step in steps.items()
                    }
                    if texts
                    else {}
                )
                yield batch, (passages, encoded)

        return prepare

    def _encoded_here(
        self,
        name: str,
        step: Step,
        passages: Sequence[Passage],
        texts: Sequence[str],
        numbers: Mapping[str, int],
    ) -> Any:
        """``step`` of the texts, the passages of sampled documents taken from the sample."""
        kept = self._kept.get(name)
        if not kept:
            return step(list(texts))
        fresh = [i for i, p in enumerate(passages) if numbers[p.doc_id] not in kept]
        made = step.encoder.encode([texts[i] for i in fresh]) if fresh else None
        made_parts = iter(pieces(made) if made is not None else [])
        parts = []
        for passage in passages:  # in document order, chunks in order: as kept
            taken = kept.get(numbers[passage.doc_id])
            if taken is None:
                parts.append(next(made_parts))
                continue
            doc_id, stored = taken
            if doc_id != passage.doc_id or not stored:
                raise OdqaError(
                    f"document {passage.doc_id!r} is not what the sample read at its place: "
                    "the corpus changed during the build; build again"
                )
            parts.append(stored.pop(0))
            if not stored:
                del kept[numbers[passage.doc_id]]
        encoded = joined(parts, step.encoder)
        if isinstance(made, TokenVectors):  # the truncations of what was encoded now
            encoded = replace(encoded, truncated=made.truncated)
        return encoded if step.then is None else step.then(encoded)

    def _joined(
        self, prepared: Iterator[tuple[list, Any]], cursors: Mapping[str, VectorsCursor]
    ) -> Iterator[tuple[list[Document], EncodedBatch]]:
        """Each prepared batch with the precomputed encodings added (the kind's step applied
        here), as an :class:`EncodedBatch`."""
        for batch, (passages, encoded) in prepared:
            texts = [indexable_text(passage) for passage in passages]
            encoded = dict(encoded)
            ids = [(passage.doc_id, passage.chunk) for passage in passages]
            for name, cursor in cursors.items():
                if not passages:
                    continue
                vectors, doclens = cursor.take(ids)
                taken: Any = (
                    TokenVectors(vectors, doclens)
                    if self.encodings[name].encoder.output == TOKENS
                    else vectors
                )
                step = self._then.get(name)
                encoded[name] = taken if step is None else step(taken)
            yield batch, EncodedBatch(kept_of(batch), passages, texts, encoded)


def pieces(encoded: Encoded, half: bool = False) -> list[Encoded]:
    """One encoding a passage; ``half``: token vectors in float16 (kept for later: half the
    memory, and ColBERT, the kind that samples, rounds them so before compressing)."""
    if isinstance(encoded, TokenVectors):
        vectors = encoded.vectors.astype(np.float16) if half else encoded.vectors
        return TokenVectors(vectors, encoded.doclens).split()
    return [encoded[i : i + 1] for i in range(len(encoded))]


def joined(parts: Sequence[Encoded], encoder: Encoder) -> Encoded:
    """Encodings of passages, one after the other, as one."""
    if encoder.output == TOKENS:
        return TokenVectors.joined(parts, encoder.dim)  # type: ignore[arg-type]
    if not parts:
        return np.zeros((0, encoder.dim), np.float32)
    return np.concatenate(parts)
