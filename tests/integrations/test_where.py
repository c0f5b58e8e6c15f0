"""Both adapters pass ``where`` to ``Searcher.search``: k hits among the documents it admits.

Skipped while ``Searcher.search`` takes no ``where`` (metadata filters land separately)."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest

from odqa.integrations.langchain import OdqaRetriever as LangChainRetriever
from odqa.integrations.llama_index import OdqaRetriever as LlamaIndexRetriever
from odqa.retrieve import Searcher

pytestmark = pytest.mark.skipif(
    "where" not in inspect.signature(Searcher.search).parameters,
    reason="Searcher.search takes no where= yet",
)
QUERY = "scurvy: a vitamin deficiency?"


@pytest.mark.parametrize("retriever", ["bm25", "hybrid"])
def test_langchain_filters_before_ranking(adapter_index: Path, retriever: str) -> None:
    where = {"year": 2020}
    docs = LangChainRetriever(index=adapter_index, k=2, retriever=retriever, where=where).invoke(
        QUERY
    )
    assert sorted(doc.metadata["doc_id"] for doc in docs) == ["d1", "d3"]
    assert all(doc.metadata["year"] == 2020 for doc in docs)
    where = {"source": ["wiki"], "year": {"gte": 2020}}
    chosen = LangChainRetriever(index=adapter_index, k=5, retriever=retriever, where=where)
    docs = asyncio.run(chosen.ainvoke(QUERY))
    assert sorted(doc.metadata["doc_id"] for doc in docs) == ["d3", "d5"]


def test_llama_index_filters_before_ranking(adapter_index: Path) -> None:
    retriever = LlamaIndexRetriever(adapter_index, k=3, retriever="bm25", where={"year": 2020})
    nodes = retriever.retrieve(QUERY)
    assert [n.node.ref_doc_id for n in nodes] == ["d1", "d3"]
    assert [n.node.ref_doc_id for n in asyncio.run(retriever.aretrieve(QUERY))] == ["d1", "d3"]
