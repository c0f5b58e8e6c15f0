"""Text analysis for BM25: turn texts into lists of string tokens.

Five analyzers, recorded in an index by :meth:`Analyzer.config` and recreated at search time by
:func:`analyzer_from_config`:

* ``en``: bm25s's own English pipeline (lowercase, ``(?u)\\b\\w\\w+\\b``, bm25s's English
  stopwords, Snowball English stemming), token for token.
* ``ko``: Kiwi morphological analysis, keeping content morphemes.
* ``generic``: any language; words, with character bigrams for scripts written without spaces.
* a language's ISO 639-1 code (``de``, ``tr``, ``vi`` ...): the generic words, lowercased as
  that language does, its stopwords removed and its Snowball stemmer applied, where it has
  them (:func:`analysis_for`).
* ``th``, ``zh``, ``ja`` with their segmenter installed: words cut by it (Chinese and
  Japanese with the generic bigrams too; :mod:`odqa.index.segmenters`).
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

import Stemmer
from tqdm.auto import tqdm

from odqa.errors import IndexFormatError, OdqaError
from odqa.extras import require
from odqa.fs import LOG
from odqa.index.segmenters import SEGMENTERS, word_cutter

SNOWBALL = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech",
    "da": "danish", "nl": "dutch", "en": "english", "eo": "esperanto", "et": "estonian",
    "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hi": "hindi",
    "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian", "lt": "lithuanian",
    "ne": "nepali", "no": "norwegian", "fa": "persian", "pl": "polish", "pt": "portuguese",
    "ro": "romanian", "ru": "russian", "sr": "serbian", "st": "sesotho", "es": "spanish",
    "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}  # fmt: skip
"""PyStemmer's Snowball stemmer of each language (by ISO 639-1 code)."""
BM25S_STOPWORDS = {
    "da": "DANISH", "nl": "DUTCH", "fr": "FRENCH", "de": "GERMAN", "it": "ITALIAN",
    "no": "NORWEGIAN", "pt": "PORTUGUESE", "ru": "RUSSIAN", "es": "SPANISH", "sv": "SWEDISH",
    "tr": "TURKISH",
}  # fmt: skip
"""Languages whose stopwords come from bm25s (the Snowball project's short lists)."""
ISO_STOPWORDS = frozenset({
    "af", "ar", "bg", "bn", "br", "ca", "cs", "el", "eo", "et", "eu", "fa", "fi", "ga", "gl",
    "gu", "ha", "he", "hi", "hr", "hu", "hy", "id", "la", "lt", "lv", "mr", "ms", "pl", "ro",
    "sk", "sl", "so", "st", "sw", "tl", "uk", "ur", "vi", "yo", "zu"
})  # fmt: skip
"""Languages whose stopwords come from stopwords-iso (single words of its lists only). Not
for scripts read as bigrams (Chinese, Japanese, Thai) or by Kiwi (Korean)."""
NAMED_LANGUAGES = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "br": "Breton",
    "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "eo": "Esperanto", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "ga": "Irish", "gl": "Galician", "gu": "Gujarati",
    "ha": "Hausa", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian",
    "hy": "Armenian", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean",
    "la": "Latin", "lt": "Lithuanian", "lv": "Latvian", "mr": "Marathi", "ms": "Malay",
    "ne": "Nepali", "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "so": "Somali",
    "sr": "Serbian", "st": "Sesotho", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil",
    "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu",
    "vi": "Vietnamese", "yi": "Yiddish", "yo": "Yoruba", "zh": "Chinese", "zu": "Zulu",
}  # fmt: skip
LANGUAGES = ("auto", "generic", *sorted(NAMED_LANGUAGES))
"""What ``--language`` accepts: ``auto`` (identified), ``generic``, or a language's code."""


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


class LanguageAnalyzer(GenericAnalyzer):
    """A language's analysis: the generic words (bigrams where unspaced), lowercased as the
    language does (Turkish and Azerbaijani dotted and dotless i; a Turkish suffix after an
    apostrophe dropped), its stopwords removed, then its Snowball stemmer, where it has them.
    """

    name = "language"

    def __init__(self, language: str, stopwords: Iterable[str], stemmer: str | None) -> None:
        self.language, self.stemmer_name = language, stemmer
        self._stopwords = frozenset(stopwords)
        self._stemmer = Stemmer.Stemmer(stemmer) if stemmer else None
        self._turkic = language in ("tr", "az")

    def split(self, texts: Iterable[str]) -> list[list[str]]:
        """Word and bigram tokens of each text, lowercased as the language does."""
        pattern = _generic_pattern()
        return [_split(pattern, self._lower(text)) for text in texts]

    def normalize(self, words: Sequence[str]) -> list[str | None]:
        """The stem of each word; None for a stopword."""
        stems = self._stemmer.stemWords(list(words)) if self._stemmer else words
        stopwords = self._stopwords
        return [
            None if word in stopwords else stem for word, stem in zip(words, stems, strict=True)
        ]

    def config(self) -> dict[str, Any]:
        """Settings of this analyzer, its stopwords listed (so that queries are analysed the
        same way whatever list a later library version ships)."""
        return {
            "name": self.name,
            "language": self.language,
            "stemmer": self.stemmer_name,
            "stopwords": sorted(self._stopwords),
        }

    def _lower(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text)
        if self._turkic:
            text = _APOSTROPHE_SUFFIX.sub("", text.replace("I", "\u0131").replace("\u0130", "i"))
        return text.casefold()


class SegmentedAnalyzer(GenericAnalyzer):
    """Thai, Chinese or Japanese cut into words by a segmenter
    (:mod:`odqa.index.segmenters`), NFKC-normalised and case-folded; Chinese and Japanese
    keep the generic tokens too (character bigrams, and the words of other scripts)."""

    name = "segmented"

    def __init__(self, language: str) -> None:
        self.language = language
        self.with_bigrams = SEGMENTERS[language].with_bigrams
        self._cut, self.segmenter = word_cutter(language)

    def split(self, texts: Iterable[str]) -> list[list[str]]:
        """Segmenter words (bigrams and the generic words beside them for Chinese and
        Japanese); whitespace and punctuation are no words."""
        pattern, unspaced = _generic_pattern(), _unspaced_char()
        out = []
        for text in texts:
            folded = unicodedata.normalize("NFKC", text).casefold()
            words = [word for word in map(str.strip, self._cut(folded)) if _has_word(word)]
            if self.with_bigrams:
                words = [word for word in words if unspaced.search(word)]
                words += _split(pattern, folded)
            out.append(words)
        return out

    def config(self) -> dict[str, Any]:
        """Settings of this analyzer: the language and the segmenter's name and version."""
        return {"name": self.name, "language": self.language, "segmenter": self.segmenter}


def _has_word(token: str) -> bool:
    return any(character.isalnum() for character in token)


@functools.lru_cache(maxsize=1)
def _unspaced_char() -> re.Pattern[str]:
    return re.compile(f"[{''.join(_UNSPACED)}]")


_APOSTROPHE_SUFFIX = re.compile(r"(?<=\w)['\u2019]\w+")


def analysis_for(language: str) -> str:
    """The analysis of a language code: ``en`` and ``ko`` their own (``ko`` when kiwipiepy is
    installed, else ``generic``), a language with a stemmer or stopwords its code
    (:class:`LanguageAnalyzer`), else ``generic``."""
    if language == "ko":
        return "ko" if importlib.util.find_spec("kiwipiepy") is not None else "generic"
    if language in SEGMENTERS:
        return language if SEGMENTERS[language].installed() else "generic"
    if language in ("en", "generic"):
        return language
    if language in SNOWBALL or language in BM25S_STOPWORDS or language in ISO_STOPWORDS:
        return language
    return "generic"


def language_stopwords(language: str) -> tuple[str, list[str]]:
    """Where a language's stopwords come from and the words (single words only)."""
    if language in BM25S_STOPWORDS:
        import bm25s.stopwords

        return "bm25s", sorted(getattr(bm25s.stopwords, f"STOPWORDS_{BM25S_STOPWORDS[language]}"))
    if language in ISO_STOPWORDS:
        import stopwordsiso

        words = stopwordsiso.stopwords(language)
        return "stopwords-iso", sorted(word for word in words if len(word.split()) == 1)
    return "none", []


def analysis_parts(analysis: str) -> str:
    """What an analysis does, in a few words."""
    if analysis == "en":
        return "English (bm25s's stopwords, Snowball English stemmer)"
    if analysis == "ko":
        return "Korean content morphemes (Kiwi)"
    if analysis == "generic":
        return "generic (words as written, character bigrams where unspaced; no stemming)"
    if analysis in SEGMENTERS:
        bigrams = " and character bigrams" if SEGMENTERS[analysis].with_bigrams else ""
        module = SEGMENTERS[analysis].modules[0]
        return f"{NAMED_LANGUAGES[analysis]} words ({module}){bigrams}"
    source, words = language_stopwords(analysis)
    stemmer = SNOWBALL.get(analysis)
    parts = [f"{len(words)} stopwords ({source})" if words else "no stopwords"]
    parts.append(f"Snowball {stemmer} stemmer" if stemmer else "no stemmer")
    return f"{NAMED_LANGUAGES.get(analysis, analysis)} ({', '.join(parts)})"


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


def make_analyzer(language: str) -> Analyzer:
    """The analyzer of ``language``: ``en``, ``ko``, ``generic`` or another language's code
    (:func:`analysis_for`); ``auto`` is resolved before, by
    :func:`odqa.index.identify.identify_collection`. Raises
    :class:`~odqa.errors.OdqaError` for anything else.
    """
    if language not in LANGUAGES or language == "auto":
        raise OdqaError(f"unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")
    analysis = analysis_for(language)
    if analysis == "en":
        return EnglishAnalyzer()
    if analysis == "ko":
        return KoreanAnalyzer()
    if analysis == "generic":
        return GenericAnalyzer()
    if analysis in SEGMENTERS:
        return SegmentedAnalyzer(analysis)
    return LanguageAnalyzer(analysis, language_stopwords(analysis)[1], SNOWBALL.get(analysis))


def analyzer_from_config(config: dict[str, Any]) -> Analyzer:
    """Recreate the analyzer whose :meth:`Analyzer.config` gave ``config``."""
    name = config.get("name")
    if name == "segmented":
        return segmented_from_config(config)
    if name == "language":
        try:
            stemmer = config["stemmer"]
            return LanguageAnalyzer(config["language"], config["stopwords"], stemmer)
        except (KeyError, TypeError) as exc:
            raise IndexFormatError(f"a damaged BM25 analyzer record ({exc!r})") from exc
    if name not in ("en", "ko", "generic"):
        raise IndexFormatError(
            f"unknown BM25 analyzer {name!r} in the index; it may come from a newer odqa"
        )
    return make_analyzer(name)


def segmented_from_config(config: dict[str, Any]) -> SegmentedAnalyzer:
    """The segmented analyzer an index records; warns when the installed segmenter is not the
    version the index was analysed with (queries may then be cut differently)."""
    language = config.get("language")
    if language not in SEGMENTERS:
        raise IndexFormatError(f"a damaged BM25 analyzer record (language {language!r})")
    analyzer = SegmentedAnalyzer(language)
    if analyzer.segmenter != config.get("segmenter"):
        LOG.warning(
            "warning: this index was analysed with %s; %s is installed, and may cut queries "
            "differently",
            config.get("segmenter"),
            analyzer.segmenter,
        )
    return analyzer
