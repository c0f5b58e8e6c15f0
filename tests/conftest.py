"""Shared fixtures: a tiny random BERT with the MiniLM tokenizer, sample corpora, data paths."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from odqa.models import embedded_model_path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "scifact-sample"
SHARED_DATA = Path(os.environ.get("ODQA_SHARED_DATA", ROOT.parent / "shared" / "data"))
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


def shared_data(*parts: str) -> Path:
    """A path under the shared data folder; the test is skipped when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 64-wide BERT with random weights and the real MiniLM tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        shutil.copy(embedded_model_path() / name, folder / name)
    return folder


@pytest.fixture()
def small_corpus(tmp_path: Path) -> Path:
    """Six short documents in JSONL, one of them long enough to be chunked."""
    docs = [
        {"id": "d1", "title": "Scurvy", "text": "Scurvy is caused by a lack of vitamin C."},
        {"id": "d2", "title": "Rickets", "text": "Rickets comes from too little vitamin D."},
        {"id": "d3", "title": "Beriberi", "text": "Beriberi follows a deficiency of thiamine."},
        {"id": "d4", "title": "Proteins", "text": "Kinases phosphorylate proteins in cells."},
        {"id": "d5", "title": "", "text": " ".join(["The ocean is deep and blue."] * 60)},
        {"id": "d6", "title": "Mitosis", "text": "Cyclins control the cell division cycle."},
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs), encoding="utf-8")
    return path
