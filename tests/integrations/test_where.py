"""Both adapters pass ``where`` to ``Searcher.search``: k hits among the documents it admits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from odqa.errors import InputError
from odqa.integrations.langchain import OdqaRetriever as LangChainRetriever
from odqa.integrations.llama_index import OdqaRetriever as LlamaIndexRetriever

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


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"colour": "red"}, "colour"),
        ({"year": {"about": 2020}}, "year"),
    ],
)
def test_a_bad_where_is_refused_when_the_adapter_is_made(
    adapter_index: Path, where: dict, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        LangChainRetriever(index=adapter_index, where=where)
    with pytest.raises(InputError, match=message):
        LlamaIndexRetriever(adapter_index, where=where)
