"""The index the adapter tests search: six documents with metadata, BM25 and dense (the tiny
random BERT, so hybrid too), passages of 32 tokens so the long document has several."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odqa.corpus import ChunkSpec
from odqa.index import BuildOptions, build_index

DOCUMENTS = [
    {"id": "d1", "title": "Scurvy", "text": "Scurvy is caused by a lack of vitamin C.",
     "metadata": {"year": 2020, "source": "pubmed"}},
    {"id": "d2", "title": "Rickets", "text": "Rickets comes from too little vitamin D.",
     "metadata": {"year": 2019, "source": "pubmed", "score": "high"}},
    {"id": "d3", "title": "Beriberi", "text": "Beriberi follows a deficiency of thiamine.",
     "metadata": {"year": 2020, "source": "wiki"}},
    {"id": "d4", "title": "Proteins", "text": "Kinases phosphorylate proteins in cells.",
     "metadata": {"year": 2018, "source": "wiki"}},
    {"id": "d5", "title": "Ocean", "text": "The ocean is deep and blue. " * 12
     + "Sailors long ago feared scurvy at sea.", "metadata": {"year": 2021, "source": "wiki"}},
    {"id": "d6", "title": "Mitosis", "text": "Cyclins control the cell division cycle.",
     "metadata": {"year": 2017, "source": "pubmed"}},
]  # fmt: skip


@pytest.fixture(scope="package")
def adapter_index(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    folder = tmp_path_factory.mktemp("adapters")
    corpus = folder / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in DOCUMENTS), encoding="utf-8")
    options = BuildOptions(
        retrievers=("bm25", "dense"),
        model=str(tiny_model),
        language="en",
        chunk=ChunkSpec(tokens=32, overlap=8),
    )
    return build_index(corpus, folder / "index", options)
