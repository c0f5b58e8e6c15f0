"""The three on-disk layouts of a late-interaction (ColBERT) checkpoint and their encoding rules.

* ``stanford``: a Stanford ColBERT folder (``HF_ColBERT`` in ``config.json``, BERT weights under
  ``bert.`` plus ``linear.weight``, settings in ``artifact.metadata``).
* ``pylate``: a PyLate / sentence-transformers folder (``modules.json`` with a Transformer module
  and Dense modules, settings in ``config_sentence_transformers.json``).
* ``plain``: any other encoder; token vectors of the last hidden state, no projection.

In both ColBERT layouts the query/document marker is one vocabulary token put right after
``[CLS]`` (Stanford's ``[unused0]``/``[unused1]``; PyLate's ``"[Q] "``/``"[D] "``, which PyLate adds
to the tokenizer as whole tokens, then inserts by id; it never prepends them as text).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import AutoConfig

from odqa.errors import OdqaError
from odqa.models.checkpoint import WEIGHT_FILES

LAYOUTS = ("stanford", "pylate", "plain")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
PYLATE_KEYS = frozenset(
    {
        "query_prefix",
        "document_prefix",
        "query_length",
        "document_length",
        "attend_to_expansion_tokens",
        "skiplist_words",
        "do_query_expansion",
    }
)


@dataclass(frozen=True)
class ColBERTSettings:
    """How texts become token vectors.

    ``skiplist_rule`` says how ``skiplist`` words become token ids: ``"first_piece"`` (Stanford:
    the first piece of each word's tokenisation) or ``"vocab"`` (PyLate: the word looked up as
    one vocabulary entry). ``strip_text``/``lowercase`` are sentence-transformers' text steps.
    """

    dim: int
    query_maxlen: int = 32
    doc_maxlen: int = 180
    query_marker: str | None = None
    doc_marker: str | None = None
    query_augmentation: bool = True
    attend_to_mask_tokens: bool = False
    mask_punctuation: bool = True
    skiplist: tuple[str, ...] = tuple(string.punctuation)
    skiplist_rule: str = "first_piece"
    drop_special_on_documents: bool = False
    normalize: bool = True
    strip_text: bool = False
    lowercase: bool = False


class Projection(torch.nn.Module):
    """One Dense module: ``activation(linear(x))``, plus an optional residual branch."""

    def __init__(
        self,
        linear: torch.nn.Linear,
        activation: torch.nn.Module | None = None,
        residual: torch.nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.linear = linear
        self.activation = activation or torch.nn.Identity()
        self.residual = residual

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out = self.activation(self.linear(tokens))
        return out if self.residual is None else out + self.residual(tokens)


@dataclass(frozen=True)
class CheckpointLayout:
    """What a folder holds: its layout, the transformer's folder, settings and projections."""

    name: str
    encoder_folder: Path
    settings: ColBERTSettings
    projections: tuple[Projection, ...]


def read_layout(folder: Path) -> CheckpointLayout:
    """Detect the layout of ``folder`` and read its settings and projection weights."""
    name = detect_layout(folder)
    if name == "stanford":
        return _stanford(folder)
    if name == "pylate":
        return _pylate(folder)
    return _plain(folder)


def detect_layout(folder: Path) -> str:
    """``"stanford"``, ``"pylate"`` or ``"plain"``, from the folder's files."""
    config = _json(folder / "config.json") or {}
    if (
        "HF_ColBERT" in (config.get("architectures") or [])
        or (folder / "artifact.metadata").is_file()
    ):
        return "stanford"
    st_config = _json(folder / "config_sentence_transformers.json") or {}
    modules = _json(folder / "modules.json") or []
    if (
        st_config.get("model_type") == "ColBERT"
        or st_config.get("similarity_fn_name") == "MaxSim"
        or PYLATE_KEYS & st_config.keys()
        or any(str(m.get("type", "")).startswith("pylate.") for m in modules)
    ):
        return "pylate"
    return "plain"


def _stanford(folder: Path) -> CheckpointLayout:
    meta = _json(folder / "artifact.metadata") or {}
    meta = meta.get("config", meta)
    weights = _weights_file(folder)
    linear = _linear(_tensors(weights, ("linear.weight",)), weights)
    if "dim" in meta and int(meta["dim"]) != linear.out_features:
        raise OdqaError(
            f"{folder}: artifact.metadata says dim {meta['dim']} but linear.weight in "
            f"{weights.name} has {linear.out_features} rows"
        )
    _require_tokenizer(folder)
    settings = ColBERTSettings(
        dim=linear.out_features,
        query_maxlen=int(meta.get("query_maxlen", 32)),
        doc_maxlen=int(meta.get("doc_maxlen", 220)),
        query_marker=meta.get("query_token_id", "[unused0]"),
        doc_marker=meta.get("doc_token_id", "[unused1]"),
        attend_to_mask_tokens=bool(meta.get("attend_to_mask_tokens", False)),
        mask_punctuation=bool(meta.get("mask_punctuation", True)),
    )
    return CheckpointLayout("stanford", folder, settings, (Projection(linear),))


def _pylate(folder: Path) -> CheckpointLayout:
    modules = _json(folder / "modules.json") or []
    transformer = next((m for m in modules if str(m.get("type", "")).endswith("Transformer")), {})
    encoder_folder = folder / transformer.get("path", "")
    dense = [m for m in modules if str(m.get("type", "")).endswith("Dense")]
    if not dense:
        raise OdqaError(
            f"{folder}: PyLate checkpoint without its projection: modules.json lists no Dense "
            "module (expected e.g. 1_Dense/)"
        )
    projections = tuple(_dense(folder / m.get("path", "")) for m in dense)
    _require_tokenizer(encoder_folder)
    config = _json(folder / "config_sentence_transformers.json") or {}
    sbert = _json(encoder_folder / "sentence_bert_config.json") or {}
    expansion = _setting(config, "do_query_expansion", True)
    skiplist = tuple(_setting(config, "skiplist_words", list(string.punctuation)))
    settings = ColBERTSettings(
        dim=projections[-1].linear.out_features,
        query_maxlen=int(_setting(config, "query_length", 32)),
        doc_maxlen=int(_setting(config, "document_length", 180)),
        query_marker=_setting(config, "query_prefix", "[Q] ") or None,
        doc_marker=_setting(config, "document_prefix", "[D] ") or None,
        query_augmentation=bool(expansion),
        attend_to_mask_tokens=bool(
            expansion and _setting(config, "attend_to_expansion_tokens", False)
        ),
        mask_punctuation=bool(skiplist),
        skiplist=skiplist,
        skiplist_rule="vocab",
        strip_text=True,
        lowercase=bool(sbert.get("do_lower_case", False)),
    )
    return CheckpointLayout("pylate", encoder_folder, settings, projections)


def _plain(folder: Path) -> CheckpointLayout:
    try:
        hidden = int(AutoConfig.from_pretrained(str(folder)).hidden_size)
    except (OSError, ValueError, AttributeError) as exc:
        raise OdqaError(f"{folder}: cannot read the model's hidden size: {exc}") from exc
    settings = ColBERTSettings(
        dim=hidden,
        query_maxlen=32,
        doc_maxlen=256,
        query_augmentation=False,
        drop_special_on_documents=True,
    )
    return CheckpointLayout("plain", folder, settings, ())


def _dense(folder: Path) -> Projection:
    """A Dense module folder: ``config.json`` and ``linear.weight`` [, ``linear.bias``]."""
    config = _json(folder / "config.json")
    if config is None:
        raise OdqaError(f"{folder}: Dense module without its config.json")
    weights = _weights_file(folder)
    names = ("linear.weight", "linear.bias", "residual.weight")
    tensors = _tensors(weights, names)
    linear = _linear(tensors, weights)
    if bool(config.get("bias", True)) != ("linear.bias" in tensors):
        raise OdqaError(
            f"{weights}: config.json bias={config.get('bias')} but the weights disagree"
        )
    residual = None
    if config.get("use_residual"):
        residual = torch.nn.Identity()
        if linear.in_features != linear.out_features:
            residual = _linear(
                {"linear.weight": _require(tensors, "residual.weight", weights)}, weights
            )
    activation = _activation(str(config.get("activation_function", "")), folder)
    return Projection(linear, activation, residual)


def _activation(name: str, folder: Path) -> torch.nn.Module:
    """A ``torch.nn`` activation named by dotted path, e.g. ``torch.nn.modules.linear.Identity``."""
    if not name:
        return torch.nn.Identity()
    cls = getattr(torch.nn, name.rsplit(".", 1)[-1], None)
    if not name.startswith("torch.nn.") or not (
        isinstance(cls, type) and issubclass(cls, torch.nn.Module)
    ):
        raise OdqaError(f"{folder}/config.json: unsupported activation_function {name!r}")
    return cls()


def _linear(tensors: dict[str, torch.Tensor], weights: Path) -> torch.nn.Linear:
    weight = _require(tensors, "linear.weight", weights)
    bias = tensors.get("linear.bias")
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias)
    return linear


def _require(tensors: dict[str, torch.Tensor], name: str, weights: Path) -> torch.Tensor:
    if name not in tensors:
        raise OdqaError(f"{weights}: no {name} (the projection weights are missing)")
    return tensors[name]


def _tensors(path: Path, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The tensors among ``names`` that the weights file holds, float32 on the CPU."""
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                stored = set(handle.keys())
                found = {n: handle.get_tensor(n) for n in names if n in stored}
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            found = {n: state[n] for n in names if n in state}
    except (OSError, RuntimeError, ValueError) as exc:
        raise OdqaError(f"{path}: cannot read weights: {exc}") from exc
    return {name: tensor.float() for name, tensor in found.items()}


def _weights_file(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise OdqaError(
        f"{folder}: the projection weights are missing (expected {' or '.join(WEIGHT_FILES)})"
    )


def _require_tokenizer(folder: Path) -> None:
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise OdqaError(f"{folder}: no tokenizer (expected tokenizer.json or vocab.txt)")


def _setting(config: dict, key: str, default: object) -> object:
    """``config[key]`` unless absent or null, as PyLate reads its settings."""
    value = config.get(key)
    return default if value is None else value


def _json(path: Path) -> dict | list | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise OdqaError(f"{path}: not valid JSON: {exc}") from exc
