"""Cutting documents into overlapping windows of tokens, with exact character offsets.

The tokens are the first neural encoder's (its Hugging Face tokenizer), or words
(:data:`WORDS`, runs of non-whitespace) in a build with no encoder.

A document of ``n`` tokens gives windows starting at ``0, stride, 2 * stride, ...`` (stride =
``tokens - overlap``), each ``tokens`` long or cut at the last token; the first window that
reaches the last token is the last one, so consecutive windows share exactly ``overlap`` tokens.

A document longer than :data:`SEGMENT_CHARS` is tokenized a segment at a time, each cut at a
whitespace (so the tokens are the ones the whole text gives), and its token offsets are kept
as a compact array: memory grows with the document's size, not 100-fold.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from odqa.corpus.records import Document, Passage
from odqa.errors import OdqaError

MIN_TOKENS = 8
SEGMENT_CHARS = 100_000


@dataclass(frozen=True)
class ChunkSpec:
    """Window size and overlap, in tokens."""

    tokens: int = 256
    overlap: int = 64

    def __post_init__(self) -> None:
        if self.tokens < MIN_TOKENS:
            raise OdqaError(f"chunk tokens must be at least {MIN_TOKENS}, got {self.tokens}")
        if not 0 <= self.overlap < self.tokens:
            raise OdqaError(
                f"chunk overlap must be in [0, {self.tokens}) (less than the window), "
                f"got {self.overlap}"
            )

    @property
    def stride(self) -> int:
        """Tokens between the starts of consecutive windows."""
        return self.tokens - self.overlap


def indexable_text(passage: Passage) -> str:
    """What BM25 and the encoders see of a passage: its title, then its text."""
    return f"{passage.title} {passage.text}".strip() if passage.title else passage.text


def is_empty(document: Document) -> bool:
    """True when the document has neither text nor title (blank counts as empty)."""
    return not document.text.strip() and not document.title.strip()


def kept_of(documents: Iterable[Document]) -> list[Document]:
    """The documents that are not empty (those an index takes)."""
    return [document for document in documents if not is_empty(document)]


def windows(count: int, spec: ChunkSpec) -> Iterator[tuple[int, int]]:
    """``(first, stop)`` token ranges covering ``count`` tokens (nothing for zero tokens)."""
    for first in range(0, count, spec.stride):
        stop = min(first + spec.tokens, count)
        yield first, stop
        if stop == count:
            return


_UNSPACED = (  # scripts written without spaces: each character is a word
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
)


class WordSplitter:
    """Tokens for a build with no neural encoder: words (runs of non-whitespace; each
    character of a script written without spaces, such as Chinese or Thai, on its own).

    A window of ``n`` tokens holds ``n / TOKENS_PER_WORD`` words, so that passages are about
    as long as an encoder's would be (256 tokens: 180 words). Cheap where it matters: a text of
    at most one window's words is never split into spans.
    """

    name = "words"
    TOKENS_PER_WORD = 1.42
    """All-MiniLM-L6-v2's wordpieces per word on SciFact's abstracts (measured)."""
    _word = re.compile(f"[{_UNSPACED}]|[^\\s{_UNSPACED}]+")
    _unspaced = re.compile(f"[{_UNSPACED}]")

    def __reduce__(self) -> str:
        """Pickled (sent to a Ray worker) as the one module-level splitter, :data:`WORDS`."""
        return "WORDS"

    def in_words(self, spec: ChunkSpec) -> ChunkSpec:
        """``spec``'s window and overlap counted in words."""
        tokens = max(MIN_TOKENS, round(spec.tokens / self.TOKENS_PER_WORD))
        return ChunkSpec(tokens, min(tokens - 1, round(spec.overlap / self.TOKENS_PER_WORD)))

    def spans(self, text: str) -> np.ndarray:
        """Character ``(start, end)`` of every word, ``(n, 2)``: 8 bytes a word, never a
        Python pair each (which costs over 100)."""
        dtype = np.int32 if len(text) < 2**31 else np.int64
        bounds = itertools.chain.from_iterable(m.span() for m in self._word.finditer(text))
        return np.fromiter(bounds, dtype=dtype).reshape(-1, 2)

    def single_window(self, document: Document, words: ChunkSpec) -> Passage | None:
        """The one passage of a text of at most ``words.tokens`` words; None if it has more
        (or may have: a long text, or one in a script written without spaces)."""
        text = document.text
        if len(text) > words.tokens * 64 or len(text.split()) > words.tokens:
            return None
        if not text.isascii() and self._unspaced.search(text):
            return None
        start, end = len(text) - len(text.lstrip()), len(text.rstrip())
        return Passage(document.id, 0, text[start:end], document.title, start, end)


WORDS = WordSplitter()


def chunk_documents(
    documents: Iterable[Document], tokenizer: Any, spec: ChunkSpec, batch_size: int = 256
) -> Iterator[Passage]:
    """Stream the passages of ``documents``, tokenizing ``batch_size`` documents at a time.

    ``tokenizer`` is :data:`WORDS` or a Hugging Face fast tokenizer (offsets are needed). A
    document whose text gives no tokens but which has a title yields one empty passage
    (``start == end == 0``); an empty document (see :func:`is_empty`) yields nothing.
    """
    if tokenizer is not WORDS and not getattr(tokenizer, "is_fast", False):
        raise OdqaError("chunk_documents needs a Hugging Face fast tokenizer (for offsets)")
    iterator = iter(documents)
    chunk_batch = _chunk_words if tokenizer is WORDS else _chunk_batch
    while batch := list(itertools.islice(iterator, batch_size)):
        yield from chunk_batch(batch, tokenizer, spec)


def _chunk_words(batch: list[Document], words: WordSplitter, spec: ChunkSpec) -> Iterator[Passage]:
    spec = words.in_words(spec)
    for document in batch:
        if is_empty(document):
            continue
        single = words.single_window(document, spec) if document.text.strip() else None
        if single is not None:
            yield single
            continue
        yield from _passages_or_title(document, words.spans(document.text), spec)


def _chunk_batch(batch: list[Document], tokenizer: Any, spec: ChunkSpec) -> Iterator[Passage]:
    short = [d.text for d in batch if d.text.strip() and len(d.text) <= SEGMENT_CHARS]
    offsets = iter(_token_offsets(short, tokenizer))
    for document in batch:
        if is_empty(document):
            continue
        if not document.text.strip():
            spans: Sequence[tuple[int, int]] | np.ndarray = []
        elif len(document.text) > SEGMENT_CHARS:
            spans = _long_token_offsets(document.text, tokenizer)
        else:
            spans = next(offsets)
        yield from _passages_or_title(document, spans, spec)


def _long_token_offsets(text: str, tokenizer: Any) -> np.ndarray:
    """Token offsets of a long text, ``(n, 2)``, tokenized a segment at a time."""
    dtype = np.int32 if len(text) < 2**31 else np.int64
    parts = []
    for start, end in _segments(text, SEGMENT_CHARS):
        spans = _token_offsets([text[start:end]], tokenizer)[0]
        if spans:
            parts.append(np.asarray(spans, dtype=dtype) + dtype(start))
    return np.concatenate(parts) if parts else np.zeros((0, 2), dtype)


def _segments(text: str, size: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` pieces of about ``size`` characters, each ending after a whitespace
    (a piece with none is cut at ``size``)."""
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = _last_space(text, start, end)
            end = cut if cut > start else end
        yield start, end
        start = end


def _last_space(text: str, start: int, end: int) -> int:
    """One past the last whitespace in ``text[start:end]``; ``start`` when there is none."""
    for position in range(end - 1, start - 1, -1):
        if text[position].isspace():
            return position + 1
    return start


def _token_offsets(texts: list[str], tokenizer: Any) -> list[list[tuple[int, int]]]:
    """Character ``(start, end)`` of every token of every text."""
    if not texts:
        return []
    encoded = tokenizer(
        texts,
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        truncation=False,
        verbose=False,
    )
    return encoded["offset_mapping"]


def _passages_or_title(
    document: Document, spans: Sequence[tuple[int, int]] | np.ndarray, spec: ChunkSpec
) -> Iterator[Passage]:
    """The document's passages, as they are cut; one empty passage (its title's) if its
    text gives no token."""
    if not len(spans):
        yield Passage(document.id, 0, "", document.title, 0, 0)
    yield from _passages(document, spans, spec)


def _passages(
    document: Document, spans: Sequence[tuple[int, int]] | np.ndarray, spec: ChunkSpec
) -> Iterator[Passage]:
    for chunk, (first, stop) in enumerate(windows(len(spans), spec)):
        start, end = int(spans[first][0]), int(spans[stop - 1][1])
        yield Passage(document.id, chunk, document.text[start:end], document.title, start, end)
