"""Text analysis for BM25: turn texts into lists of string tokens.

Three analyzers, recorded in an index by :meth:`Analyzer.config` and recreated at search time by
:func:`analyzer_from_config`:

* ``en``: bm25s's own English pipeline (lowercase, ``(?u)\\b\\w\\w+\\b``, bm25s's English
  stopwords, Snowball English stemming), token for token.
* ``ko``: Kiwi morphological analysis, keeping content morphemes.
* ``generic``: any language; words, with character bigrams for scripts written without spaces.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

import Stemmer
from tqdm.auto import tqdm

from odqa.errors import IndexFormatError, OdqaError
from odqa.extras import require

LANGUAGES = ("en", "ko", "generic", "auto")


class Analyzer(Protocol):
    """Turns texts into token lists; documents and queries must go through the same one.

    Analysis is two steps, so that a large build normalises each distinct word once:
    ``split`` cuts texts into words, ``normalize`` maps distinct words to their tokens (None
    drops a word). ``tokenize`` is both, text by text.
    """

    name: str

    def split(self, texts: Sequence[str]) -> list[list[str]]:
        """The words of each text, before normalisation."""
        ...

    def normalize(self, words: Sequence[str]) -> list[str | None]:
        """The token of each (distinct) word; None where the word is dropped."""
        ...

    def tokenize(self, texts: Sequence[str], show_progress: bool = False) -> list[list[str]]:
        """One token list per text."""
        ...

    def config(self) -> dict[str, Any]:
        """JSON-serialisable settings that :func:`analyzer_from_config` turns back into it."""
        ...


def _progress(texts: Sequence[str], show_progress: bool, what: str) -> Iterable[str]:
    """``texts``, behind a progress bar when asked for."""
    return tqdm(texts, desc=what, unit="text", disable=not show_progress)


class _TwoStep:
    """``tokenize`` from ``split`` and ``normalize``: each distinct word normalised once."""

    name: str

    def tokenize(self, texts: Sequence[str], show_progress: bool = False) -> list[list[str]]:
        """Tokens of each text: its words, normalised, dropped ones left out."""
        words = self.split(_progress(texts, show_progress, f"Analysing ({self.name})"))
        unique = list({word: None for text_words in words for word in text_words})
        tokens = dict(zip(unique, self.normalize(unique), strict=True))
        return [
            [token for word in text_words if (token := tokens[word]) is not None]
            for text_words in words
        ]


class EnglishAnalyzer(_TwoStep):
    """Exactly ``bm25s.tokenize(texts, stopwords="en", stemmer=Stemmer.Stemmer("english"))``.

    Lowercase, word tokens of two or more characters, bm25s's English stopwords removed before
    stemming, then PyStemmer's Snowball English stemmer.
    """

    name = "en"
    _words = re.compile(r"(?u)\b\w\w+\b")

    def __init__(self) -> None:
        from bm25s.stopwords import STOPWORDS_EN

        self._stopwords = frozenset(STOPWORDS_EN)
        self._stemmer = Stemmer.Stemmer("english")

    def split(self, texts: Iterable[str]) -> list[list[str]]:
        """Lowercased words of two or more word characters, stopwords included."""
        findall = self._words.findall
        return [findall(text.lower()) for text in texts]

    def normalize(self, words: Sequence[str]) -> list[str | None]:
        """The Snowball stem of each word; None for a stopword."""
        stems = self._stemmer.stemWords(list(words))
        stopwords = self._stopwords
        return [
            None if word in stopwords else stem for word, stem in zip(words, stems, strict=True)
        ]

    def config(self) -> dict[str, Any]:
        """Settings of this analyzer."""
        return {"name": self.name, "stopwords": "bm25s-en", "stemmer": "snowball-english"}


class KoreanAnalyzer(_TwoStep):
    """Content morphemes from Kiwi (kiwipiepy), lowercased.

    Kept: nouns (NN*), verb and adjective stems (VV, VA, with their irregular variants), roots
    (XR), foreign words (SL), numbers (SN) and Chinese characters (SH). Particles, endings and
    affixes are dropped.
    """

    name = "ko"
    _kept_tags = frozenset({"NNG", "NNP", "NNB", "VV", "VA", "XR", "SL", "SN", "SH"})

    def split(self, texts: Iterable[str]) -> list[list[str]]:
        """Content morphemes of each text, lowercased."""
        return [self._content(tokens) for tokens in _kiwi().tokenize(list(texts))]

    def normalize(self, words: Sequence[str]) -> list[str | None]:
        """Morphemes are tokens as they are."""
        return list(words)

    def config(self) -> dict[str, Any]:
        """Settings of this analyzer."""
        return {"name": self.name, "morphology": "kiwipiepy", "tags": sorted(self._kept_tags)}

    def _content(self, tokens: Iterable[Any]) -> list[str]:
        """Forms of the kept morphemes; tags like ``VV-I`` count as ``VV``."""
        kept = self._kept_tags
        return [token.form.lower() for token in tokens if token.tag.split("-")[0] in kept]


@functools.lru_cache(maxsize=1)
def _kiwi() -> Any:
    """The shared Kiwi analyser, loaded on first use (it takes a second or two)."""
    return require("kiwipiepy", "ko", "Korean analysis").Kiwi()


# Scripts written without spaces between words (character-class bodies); each maximal run of
# one of them becomes character bigrams. Hiragana, Katakana and CJK ideographs form one class.
_UNSPACED = (
    "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f",
    "\u0e00-\u0e7f",  # Thai
    "\u0e80-\u0eff",  # Lao
    "\u1000-\u109f",  # Myanmar
    "\u1780-\u17ff",  # Khmer
)


class GenericAnalyzer(_TwoStep):
    """A fallback for any language: Unicode words, bigrams where words are not spaced.

    NFKC normalisation and case folding, then word tokens (``\\w`` characters plus combining
    marks, so that Thai or Devanagari vowel signs stay inside their word). Runs of CJK
    ideographs, Hiragana, Katakana, Thai, Lao, Myanmar or Khmer become overlapping character
    bigrams (a lone character stays a unigram). No stemming, no stopwords.
    """

    name = "generic"

    def split(self, texts: Iterable[str]) -> list[list[str]]:
        """Word and bigram tokens of each text."""
        pattern = _generic_pattern()
        return [_split(pattern, unicodedata.normalize("NFKC", text).casefold()) for text in texts]

    def normalize(self, words: Sequence[str]) -> list[str | None]:
        """Words are tokens as they are."""
        return list(words)

    def config(self) -> dict[str, Any]:
        """Settings of this analyzer."""
        return {"name": self.name, "normalization": "NFKC+casefold", "unspaced": "bigrams"}


def _split(pattern: re.Pattern[str], text: str) -> list[str]:
    """Words of ``text``, with each unspaced run expanded into bigrams."""
    tokens: list[str] = []
    for match in pattern.finditer(text):
        if match.lastindex is None:
            tokens.append(match.group())
        else:
            tokens.extend(_bigrams(match.group()))
    return tokens


def _bigrams(run: str) -> Iterator[str]:
    """Overlapping character bigrams of ``run``; a single character is its own token."""
    if len(run) == 1:
        yield run
    for start in range(len(run) - 1):
        yield run[start : start + 2]


@functools.lru_cache(maxsize=1)
def _generic_pattern() -> re.Pattern[str]:
    """Unspaced runs as groups, else words: ``\\w`` or combining marks, not in those scripts."""
    runs = "|".join(f"([{body}]+)" for body in _UNSPACED)
    word = f"(?:(?![{''.join(_UNSPACED)}])[\\w{_combining_marks()}])+"
    return re.compile(f"{runs}|{word}")


def _combining_marks() -> str:
    """A regex character-class body of every Unicode combining mark (categories Mn, Mc, Me)."""
    marks = [
        code for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code))[0] == "M"
    ]
    ranges: list[tuple[int, int]] = []
    for code in marks:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "".join(f"{re.escape(chr(first))}-{re.escape(chr(last))}" for first, last in ranges)


_HANGUL = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\ud7b0-\ud7ff]")
_LATIN = re.compile("[a-zA-Z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]")
_LETTER = re.compile(r"[^\W\d_]")


def detect_language(texts: Iterable[str], sample_chars: int = 200_000) -> str:
    """Guess ``"en"``, ``"ko"`` or ``"generic"`` from the scripts of a sample of the texts.

    The texts are read in order up to ``sample_chars`` characters; among their letters, a
    Hangul share above 0.3 gives ``"ko"``, else a Latin share above 0.8 gives ``"en"``, else
    (or with no letters at all) ``"generic"``.
    """
    sample = _sample(texts, sample_chars)
    letters = len(_LETTER.findall(sample))
    if letters == 0:
        return "generic"
    if len(_HANGUL.findall(sample)) / letters > 0.3:
        return "ko"
    if len(_LATIN.findall(sample)) / letters > 0.8:
        return "en"
    return "generic"


def _sample(texts: Iterable[str], sample_chars: int) -> str:
    """The first ``sample_chars`` characters of the texts, joined by newlines."""
    parts: list[str] = []
    left = sample_chars
    for text in texts:
        if left <= 0:
            break
        parts.append(text[:left])
        left -= len(parts[-1])
    return "\n".join(parts)


def make_analyzer(language: str, sample: Iterable[str] | None = None) -> Analyzer:
    """The analyzer for ``"en"``, ``"ko"``, ``"generic"``, or ``"auto"``.

    ``"auto"`` picks one with :func:`detect_language` over ``sample``, which it needs.
    Raises :class:`~odqa.errors.OdqaError` for any other language.
    """
    if language == "auto":
        if sample is None:
            raise OdqaError("language 'auto' needs sample texts to detect the language from")
        language = detect_language(sample)
    if language == "en":
        return EnglishAnalyzer()
    if language == "ko":
        return KoreanAnalyzer()
    if language == "generic":
        return GenericAnalyzer()
    raise OdqaError(f"unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")


def analyzer_from_config(config: dict[str, Any]) -> Analyzer:
    """Recreate the analyzer whose :meth:`Analyzer.config` gave ``config``."""
    name = config.get("name")
    if name not in ("en", "ko", "generic"):
        raise IndexFormatError(
            f"unknown BM25 analyzer {name!r} in the index; it may come from a newer odqa"
        )
    return make_analyzer(name)
