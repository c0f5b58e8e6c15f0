"""Helpers shared by the test modules: paths, the shared data folder, hand-set models, SQuAD files.

Test modules import from here (``from helpers import ...``), never from each other or from
``conftest``; fixtures live in ``conftest.py``. ``tests/`` is on ``sys.path`` through the
``pythonpath`` setting in pyproject.toml. ``web_server.py`` is the other helper module (the
local web server of the web-fetch tests).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

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

SCURVY = "Scurvy is caused by a lack of vitamin C in the diet."
TOY = [
    ("Scurvy", SCURVY, "What causes scurvy?", "vitamin C"),
    ("Rickets", "Rickets comes from too little vitamin D and sunlight.", "What causes rickets?",
     "vitamin D"),
    ("Beriberi", "Beriberi follows a deficiency of thiamine, also called vitamin B1.",
     "What deficiency causes beriberi?", "thiamine"),
]  # fmt: skip


def shared_data(*parts: str) -> Path:
    """A path under the shared data folder; the test is skipped when it is absent.

    A test that calls it (or takes a fixture that does) gets the ``shared_data`` marker
    automatically (see ``conftest.py``)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    return path


def copy_tokenizer(folder: Path) -> None:
    """Copy the embedded MiniLM's tokenizer files into ``folder``."""
    for name in TOKENIZER_FILES:
        shutil.copy(embedded_model_path() / name, folder / name)


def save_hand_set_reader(folder: Path) -> Path:
    """A reader with no transformer layer whose start logit is ~7.9 on the token "vitamin",
    end logit ~7.9 on "c", and 0 on every other token: it answers "vitamin C" wherever found."""
    folder.mkdir(parents=True, exist_ok=True)
    copy_tokenizer(folder)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    config = BertConfig(hidden_size=8, num_hidden_layers=0, num_attention_heads=1)
    model = BertForQuestionAnswering(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.bert.embeddings.LayerNorm.weight.fill_(1.0)
        words = model.bert.embeddings.word_embeddings.weight
        words[tokenizer.convert_tokens_to_ids("vitamin"), 0] = 10.0
        words[tokenizer.convert_tokens_to_ids("c"), 1] = 10.0
        model.qa_outputs.weight[0, 0] = 1.0  # start logit = hidden dimension 0
        model.qa_outputs.weight[1, 1] = 1.0  # end logit = hidden dimension 1
    model.save_pretrained(folder)
    return folder


def write_squad(path: Path, items=TOY) -> Path:
    """A SQuAD v1.1 file with one article per (title, context, question, answer) item."""
    data = {
        "data": [
            {
                "title": title,
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": f"q{index}",
                                "question": question,
                                "answers": [{"text": answer, "answer_start": context.find(answer)}],
                            }
                        ],
                    }
                ],
            }
            for index, (title, context, question, answer) in enumerate(items)
        ]
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def listing(folder: Path) -> list[str]:
    """The names in ``folder``, sorted: anything left over (a temporary, a lock) shows."""
    return sorted(p.name for p in folder.iterdir())


def json_lines(output: str) -> list[dict]:
    """The objects of a command's JSON Lines output (``search --json`` prints a hit a line)."""
    return [json.loads(line) for line in output.splitlines() if line.strip()]
