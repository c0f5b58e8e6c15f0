"""Word segmenters for scripts written without spaces between words: Thai, Chinese, Japanese.

Measured on native question-answering sets for BM25 (``bench/segmenters.py``, nDCG@10):
Thai (iapp-wiki-qa) 0.897 with character bigrams, 0.979 with PyThaiNLP's words, 0.962 with
both; Chinese CMRC 2018 0.983 / 0.984 (jieba) / 0.988, DRCD 0.970 / 0.958 / 0.974; Japanese
JaQuAD 0.908 / 0.905 (SudachiPy) / 0.921. So Thai is cut into words alone and Chinese and
Japanese into words and bigrams, when the segmenter is installed (``odqa[th]``,
``odqa[zh]``, ``odqa[ja]``); without it they keep the bigrams of the generic analysis.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from odqa.extras import require


@dataclass(frozen=True)
class Segmenter:
    """A language's segmenter: the modules it needs, its extra, and whether the analysis
    keeps the generic bigrams beside its words."""

    language: str
    modules: tuple[str, ...]
    extra: str
    with_bigrams: bool

    def installed(self) -> bool:
        """Whether every module it needs can be imported (without importing them)."""
        return all(importlib.util.find_spec(module) is not None for module in self.modules)


SEGMENTERS = {
    "th": Segmenter("th", ("pythainlp",), "th", with_bigrams=False),
    "zh": Segmenter("zh", ("jieba",), "zh", with_bigrams=True),
    "ja": Segmenter("ja", ("sudachipy", "sudachidict_core"), "ja", with_bigrams=True),
}


@functools.lru_cache(maxsize=4)
def word_cutter(language: str) -> tuple[Callable[[str], list[str]], str]:
    """The words of a text by ``language``'s segmenter, and the segmenter's name and version
    (an index records it: another version may cut queries differently)."""
    what = f"{language} word segmentation"
    if language == "th":
        require("pythainlp", "th", what)
        from pythainlp.tokenize import word_tokenize

        return (
            lambda text: word_tokenize(text, engine="newmm"),
            f"pythainlp newmm {importlib.metadata.version('pythainlp')}",
        )
    if language == "zh":
        jieba = require("jieba", "zh", what)
        jieba.setLogLevel(60)  # no "Building prefix dict" lines on stderr
        return (lambda text: list(jieba.cut(text)), f"jieba {importlib.metadata.version('jieba')}")
    sudachi = require("sudachipy", "ja", what)
    require("sudachidict_core", "ja", what, package="sudachidict-core")
    tokenizer = sudachi.Dictionary(dict="core").tokenizer(mode=sudachi.SplitMode.C)
    version = importlib.metadata.version("sudachidict-core")
    return (
        lambda text: [morpheme.surface() for morpheme in tokenizer.tokenize(text)],
        f"sudachipy mode C, core dictionary {version}",
    )
