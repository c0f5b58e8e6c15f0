"""Which language a collection is written in, identified on a sample of its passages.

py3langid (a naive Bayes classifier over byte n-grams that ships its own model) labels each
sampled passage with a language and a probability; passages with too few letters, or labelled
with less than :data:`CONFIDENT` probability, do not vote. One language with at least
:data:`DOMINANT` of the votes is the collection's language; otherwise it is ``mixed`` (with
each language's share). With no vote at all (numbers, code, URLs, a few words) the language
is ``unknown`` and the collection is analysed by its script alone, as odqa did before it
identified languages: Hangul as Korean, Latin as English, anything else generically.

:attr:`CollectionLanguage.analysis` is what BM25 analyses the collection as (an ISO 639-1
code, ``generic`` or ``ko``); :mod:`odqa.index.languages` chooses the dense model from it.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from odqa.corpus import Document
from odqa.corpus.sample import spread_sample
from odqa.errors import OdqaError
from odqa.extras import install_command
from odqa.index.analysis import (
    LANGUAGES,
    NAMED_LANGUAGES,
    analysis_for,
    analysis_parts,
    detect_language,
)
from odqa.index.segmenters import SEGMENTERS

SAMPLE_PASSAGES = 300
SAMPLE_CHARS = 2000
"""Passages identified (spread over those given), and the characters read of each."""
MIN_LETTERS = 20
"""A passage with fewer letters does not vote."""
CONFIDENT = 0.8
"""A passage votes only when the identifier gives its language at least this probability."""
DOMINANT = 0.8
"""The share of the votes one language needs to be the collection's language."""
SHARES_KEPT = 5
FAMILY = {"nn": "no", "nb": "no", "ms": "id", "wuu": "zh", "yue": "zh", "arz": "ar", "ary": "ar"}
"""Labels py3langid gives to close varieties, counted as the language they are analysed as."""
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class CollectionLanguage:
    """A collection's language: ``code`` is an ISO 639-1 code, ``mixed`` or ``unknown``.

    ``shares``: each identified language's share of the votes (the largest first, at most
    five); ``sampled``: passages read; ``voted``: those confidently identified; ``how``:
    ``identified``, ``named`` (``--language``) or ``script`` (nothing identified);
    ``analysis``: what BM25 analyses it as.
    """

    code: str
    analysis: str
    how: str
    sampled: int = 0
    voted: int = 0
    shares: dict[str, float] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """What the manifest keeps."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> CollectionLanguage | None:
        """The language a manifest recorded; None for an index built before it was."""
        known = set(cls.__dataclass_fields__)
        if not record or not {"code", "analysis", "how"} <= set(record):
            return None
        return cls(**{key: value for key, value in record.items() if key in known})

    def describe(self) -> str:
        """The language and how it was found, in words, for ``odqa index`` and ``odqa info``."""
        analysed = f"BM25 analysis: {analysis_parts(self.analysis)}"
        extra = "ko" if self.code == "ko" else getattr(SEGMENTERS.get(self.code), "extra", None)
        if extra and self.analysis == "generic":
            analysed += f" ({install_command(extra)} for {language_name(self.code)} words)"
        if self.how == "named":
            return f"language: {language_name(self.code)} (named); {analysed}"
        mix = ", ".join(f"{language_name(code)} {share:.0%}" for code, share in self.shares.items())
        votes = f"{self.voted} of {self.sampled} sampled passages identified"
        if self.code == "unknown":
            return (
                f"language: not identified ({votes}; too few words to tell); {analysed}, "
                "chosen by the script; pass --language to name it"
            )
        if self.code == "mixed":
            return f"language: mixed ({mix}; {votes}); {analysed}"
        return f"language: {language_name(self.code)} ({mix}; {votes}); {analysed}"


def identify_collection(texts: Sequence[str], named: str = "auto") -> CollectionLanguage:
    """The language of a collection from ``texts`` (its first passages' titles and texts), or
    the one ``named`` (anything but ``auto``: an ISO 639-1 code, ``generic`` or ``ko``)."""
    if named != "auto":
        if named not in LANGUAGES:
            raise OdqaError(f"unknown language {named!r}; choose one of {', '.join(LANGUAGES)}")
        return CollectionLanguage(named, analysis_for(named), "named")
    sample = spread_sample(texts, SAMPLE_PASSAGES, SAMPLE_CHARS)
    votes = Counter(label for text in sample if (label := identify_passage(text)) is not None)
    voted = sum(votes.values())
    if not voted:
        by_script = detect_language(sample)
        return CollectionLanguage("unknown", by_script, "script", len(sample), 0)
    shares = {
        code: round(count / voted, 3) for code, count in votes.most_common(SHARES_KEPT)
    }  # fmt: skip
    top, count = votes.most_common(1)[0]
    if count / voted >= DOMINANT:
        return CollectionLanguage(top, analysis_for(top), "identified", len(sample), voted, shares)
    analyses = {analysis_for(code) for code in votes}
    analysis = analyses.pop() if len(analyses) == 1 else "generic"
    return CollectionLanguage("mixed", analysis, "identified", len(sample), voted, shares)


def identify_passage(text: str) -> str | None:
    """The language of one passage (close varieties folded, :data:`FAMILY`); None when it has
    fewer than :data:`MIN_LETTERS` letters or no language is at least :data:`CONFIDENT`."""
    if len(_LETTER.findall(text)) < MIN_LETTERS:
        return None
    code, probability = _identifier().classify(text)
    if probability < CONFIDENT or code == "zxx":
        return None
    return FAMILY.get(code, code)


def document_texts(documents: Sequence[Document]) -> list[str]:
    """What identification and the readability check read of each document: title and text."""
    return [f"{document.title} {document.text}".strip() for document in documents]


def language_name(code: str) -> str:
    """``German (de)`` for ``de``; the code itself where no name is known."""
    name = NAMED_LANGUAGES.get(code)
    return f"{name} ({code})" if name else code


@functools.lru_cache(maxsize=1)
def _identifier() -> Any:
    """py3langid's identifier with probabilities (its model loads in under a second)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
