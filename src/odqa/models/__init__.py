"""Turning text into vectors: the embedded default model and local Hugging Face folders."""

from odqa.models.checkpoint import EMBEDDED_NAME, ModelRef, embedded_model_path, resolve_model
from odqa.models.colbert import ColBERTEncoder
from odqa.models.dense import DenseEncoder

__all__ = [
    "EMBEDDED_NAME",
    "ColBERTEncoder",
    "DenseEncoder",
    "ModelRef",
    "embedded_model_path",
    "resolve_model",
]
