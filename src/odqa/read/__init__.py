"""Readers: answers read from retrieved passages (extractive spans, sentences, yes/no, generated).

:mod:`odqa.read.answer` holds what every reader shares (:class:`Answer`, :class:`Evidence`,
the :class:`Reader` protocol); :func:`make_reader` picks one by kind. The readers themselves
load torch and transformers, so they are imported only when asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from odqa.read.answer import Answer, Evidence, Reader
from odqa.read.factory import READERS, ReaderSettingsError, make_reader

if TYPE_CHECKING:
    from odqa.read.extractive import ExtractiveReader
    from odqa.read.generative import GenerativeReader
    from odqa.read.sentence import SentenceReader
    from odqa.read.yesno import YesNoReader

LAZY = {
    "ExtractiveReader": "odqa.read.extractive",
    "GenerativeReader": "odqa.read.generative",
    "SentenceReader": "odqa.read.sentence",
    "YesNoReader": "odqa.read.yesno",
}

__all__ = [
    "READERS",
    "Answer",
    "Evidence",
    "ExtractiveReader",
    "GenerativeReader",
    "Reader",
    "ReaderSettingsError",
    "SentenceReader",
    "YesNoReader",
    "make_reader",
]


def __getattr__(name: str) -> Any:
    if name in LAZY:
        return getattr(importlib.import_module(LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
