"""How documents are cut into passages, decided once for a build by the encoders it uses.

Passages are cut in the tokens of the first encoder that has a tokenizer (in the order the
index lists its kinds), else in words (:data:`odqa.corpus.WORDS`): what a kind's model reads
is then exactly one window. ``odqa encode``, ``odqa index`` and an update of an index all cut
through a :class:`Cutter`; an update takes the one the index recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from odqa.corpus import WORDS, ChunkSpec, Document, Passage, chunk_documents
from odqa.encode.encoders import Encoder


@dataclass(frozen=True)
class Cutter:
    """``tokenizer`` (a fast Hugging Face tokenizer, or :data:`WORDS`) named ``name`` as the
    manifest records it, cutting windows of ``spec``."""

    tokenizer: Any
    name: str
    spec: ChunkSpec

    @classmethod
    def for_encoders(cls, encoders: Iterable[Encoder | None], spec: ChunkSpec) -> Cutter:
        """The first encoder's tokenizer that there is, else words."""
        for encoder in encoders:
            found = encoder.tokenizer() if encoder is not None else None
            if found is not None:
                return cls(found[0], found[1], spec)
        return cls(WORDS, WORDS.name, spec)

    @classmethod
    def recorded(cls, chunking: Mapping[str, Any], encoders: Iterable[Encoder] = ()) -> Cutter:
        """The cutter an index's manifest (``chunking``) records: the tokenizer of one of
        ``encoders`` when it is the one recorded (loaded already), else loaded."""
        spec = ChunkSpec(tokens=chunking["tokens"], overlap=chunking["overlap"])
        if chunking["tokenizer"] == WORDS.name:
            return cls(WORDS, WORDS.name, spec)
        for encoder in encoders:
            found = encoder.tokenizer()
            if found is not None and found[1] == chunking["tokenizer"]:
                return cls(found[0], found[1], spec)
        from odqa.models.checkpoint import load_transformer, resolve_model
        from odqa.models.device import pick_device

        path = resolve_model(chunking["tokenizer"]).path
        tokenizer, _ = load_transformer(path, pick_device("cpu"))
        return cls(tokenizer, chunking["tokenizer"], spec)

    def record(self) -> dict[str, Any]:
        """What the manifest (and a vectors folder) records: window, overlap, tokenizer, and
        for passages cut in words the window in words."""
        chunking = {
            "tokens": self.spec.tokens,
            "overlap": self.spec.overlap,
            "tokenizer": self.name,
        }
        if self.tokenizer is WORDS:
            words = WORDS.in_words(self.spec)
            chunking |= {"words": words.tokens, "overlap_words": words.overlap}
        return chunking

    def cut(self, documents: Sequence[Document]) -> list[Passage]:
        """The passages of ``documents`` (empty ones give none), in order."""
        return list(chunk_documents(documents, self.tokenizer, self.spec))
