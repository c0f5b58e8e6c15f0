"""Writing trained retrievers as folders other tools load, and the starting point of training.

* ColBERT: the Stanford layout (``config.json`` naming ``HF_ColBERT``, weights as ``bert.*`` plus
  ``linear.weight`` in ``model.safetensors``, the tokenizer, ``artifact.metadata``).
* Dense: a Hugging Face folder with sentence-transformers' module files, so its pooling and
  normalisation are recorded (``modules.json``, ``1_Pooling/config.json``, ``2_Normalize``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import save_file

from odqa.errors import OdqaError
from odqa.models.checkpoint import load_transformer, resolve_model
from odqa.models.colbert import ColBERTEncoder
from odqa.models.colbert_layouts import detect_layout
from odqa.models.dense import DenseEncoder
from odqa.models.device import pick_device

INDEX_DOC_MAXLEN = 300  # whole 256-token chunks plus a title fit at index time
QUERY_MAXLEN = 32
PCA_SAMPLE_TEXTS = 512


def save_stanford_colbert(encoder: ColBERTEncoder, folder: Path, name: str = "odqa") -> None:
    """Write ``encoder`` (a Stanford-layout ColBERT encoder) as a Stanford ColBERT folder."""
    projection = encoder.projection[0].linear
    _write_stanford(
        folder,
        encoder.model,
        encoder.tokenizer,
        projection.weight,
        {
            "query_maxlen": encoder.settings.query_maxlen,
            "doc_maxlen": encoder.settings.doc_maxlen,
            "attend_to_mask_tokens": encoder.settings.attend_to_mask_tokens,
            "mask_punctuation": encoder.settings.mask_punctuation,
            "checkpoint": name,
        },
    )


def start_colbert(
    base: str | Path | None, dim: int | None, sample_texts: Sequence[str], folder: Path
) -> Path:
    """The Stanford-layout folder training starts from.

    A Stanford ColBERT ``base`` is trained further as it is (``dim`` must match or be None).
    A plain encoder gets a new ``dim``-wide projection (default 128), initialised with the top
    principal directions of its token vectors over ``sample_texts`` so that training starts
    close to the encoder's own zero-shot MaxSim; it is written to ``folder``.
    """
    ref = resolve_model(base)
    layout = detect_layout(ref.path)
    if layout == "stanford":
        width = ColBERTEncoder(ref.path, device="cpu").dim
        if dim is not None and dim != width:
            raise OdqaError(f"{ref.path}: the checkpoint's dim is {width}, not {dim}")
        return ref.path
    if layout == "pylate":
        raise OdqaError(
            f"{ref.path}: training from a PyLate checkpoint is not supported; start from its "
            "underlying transformer folder or a Stanford ColBERT checkpoint"
        )
    tokenizer, model = load_transformer(ref.path, pick_device("cpu"))
    weight = principal_directions(model, tokenizer, sample_texts, dim or 128)
    _write_stanford(
        folder,
        model,
        tokenizer,
        weight,
        {
            "query_maxlen": QUERY_MAXLEN,
            "doc_maxlen": INDEX_DOC_MAXLEN,
            "attend_to_mask_tokens": False,
            "mask_punctuation": True,
            "checkpoint": ref.name,
        },
    )
    return folder


@torch.inference_mode()
def principal_directions(model, tokenizer, texts: Sequence[str], dim: int) -> torch.Tensor:
    """(dim, hidden) rows: the top eigenvectors of the second moment of unit token vectors."""
    hidden = int(model.config.hidden_size)
    if not 0 < dim <= hidden:
        raise OdqaError(f"dim must be between 1 and the model's hidden size {hidden}, got {dim}")
    moment = torch.zeros(hidden, hidden, dtype=torch.float64)
    for start in range(0, min(len(texts), PCA_SAMPLE_TEXTS), 32):
        batch = tokenizer(
            list(texts[start : start + 32]),
            truncation=True,
            max_length=256,
            padding=True,
            return_tensors="pt",
        )
        states = model(**batch).last_hidden_state[batch["attention_mask"].bool()]
        vectors = torch.nn.functional.normalize(states.double(), dim=-1)
        moment += vectors.T @ vectors
    if not moment.any():
        raise OdqaError("no training text to initialise the ColBERT projection from")
    _, eigenvectors = torch.linalg.eigh(moment)
    return eigenvectors[:, -dim:].flip(1).T.float().contiguous()


def save_dense_folder(encoder: DenseEncoder, folder: Path) -> None:
    """Write ``encoder`` as a Hugging Face folder that records its pooling and normalisation."""
    folder.mkdir(parents=True, exist_ok=True)
    encoder.model.save_pretrained(str(folder))
    encoder.tokenizer.save_pretrained(str(folder))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if encoder.normalize:
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
        (folder / "2_Normalize").mkdir(exist_ok=True)
    pooling = {
        "word_embedding_dimension": encoder.dim,
        "pooling_mode_cls_token": encoder.pooling == "cls",
        "pooling_mode_mean_tokens": encoder.pooling == "mean",
        "pooling_mode_max_tokens": encoder.pooling == "max",
    }
    (folder / "1_Pooling").mkdir(exist_ok=True)
    _write_json(folder / "1_Pooling" / "config.json", pooling)
    _write_json(folder / "modules.json", modules)
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": encoder.max_length})
    prompts = {"query": encoder.query_prefix, "document": encoder.document_prefix}
    _write_json(folder / "config_sentence_transformers.json", {"prompts": prompts})


def _write_stanford(folder: Path, model, tokenizer, weight: torch.Tensor, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"bert.{key}": value for key, value in model.state_dict().items()}
    tensors["linear.weight"] = weight
    tensors = {key: value.detach().cpu().float().contiguous() for key, value in tensors.items()}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config["architectures"] = ["HF_ColBERT"]
    _write_json(folder / "config.json", config)
    tokenizer.save_pretrained(str(folder))
    metadata = {
        "dim": int(weight.shape[0]),
        "similarity": "cosine",
        "query_token_id": "[unused0]",
        "doc_token_id": "[unused1]",
        **meta,
    }
    _write_json(folder / "artifact.metadata", metadata)


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
