"""The LlamaIndex adapter, with the real llama-index-core: a retriever, then a query engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

from odqa.errors import OdqaError
from odqa.integrations.llama_index import OdqaRetriever
from odqa.retrieve import Searcher


def test_it_is_a_llama_index_retriever_returning_nodes(adapter_index: Path) -> None:
    with OdqaRetriever(adapter_index, k=3, retriever="bm25") as retriever:
        assert isinstance(retriever, BaseRetriever)
        nodes = retriever.retrieve("scurvy: a vitamin deficiency?")
    assert all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
    assert len(nodes) == 3
    first = nodes[0].node
    assert (first.node_id, first.ref_doc_id) == ("d1#0", "d1")
    assert first.text == "Scurvy is caused by a lack of vitamin C."
    assert (first.start_char_idx, first.end_char_idx) == (0, len(first.text))
    assert first.metadata["title"] == "Scurvy" and first.metadata["year"] == 2020
    assert first.metadata["retriever"] == "bm25" and first.metadata["rank"] == 1
    scores = [n.score for n in nodes]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]
    assert [n.node.metadata["score"] for n in nodes] == scores


def test_the_language_model_sees_title_and_metadata_not_bookkeeping(adapter_index: Path) -> None:
    node = OdqaRetriever(adapter_index, k=1, retriever="bm25").retrieve("thiamine")[0].node
    shown = node.get_content(MetadataMode.LLM)
    assert "title: Beriberi" in shown and "source: wiki" in shown and "doc_id: d3" in shown
    assert "row:" not in shown and "rank:" not in shown and "score:" not in shown
    assert shown.endswith("Beriberi follows a deficiency of thiamine.")


def test_a_query_engine_end_to_end(adapter_index: Path) -> None:
    """RetrieverQueryEngine with LlamaIndex's MockLLM (which answers with its prompt): the
    retrieved passages reach the model, best first, and come back as the sources."""
    searcher = Searcher(adapter_index)
    engine = RetrieverQueryEngine.from_args(
        OdqaRetriever(searcher, k=2, retriever="bm25"), llm=MockLLM()
    )
    response = engine.query("what causes rickets?")
    assert [n.node.ref_doc_id for n in response.source_nodes] == ["d2", "d1"]
    text = str(response)
    assert text.index("Rickets comes from too little vitamin D.") < text.index("Scurvy is")
    assert text.rstrip().endswith("Query: what causes rickets?\nAnswer:")
    again = asyncio.run(engine.aquery("what causes rickets?"))
    assert str(again) == text
    assert [n.score for n in again.source_nodes] == [n.score for n in response.source_nodes]
    searcher.close()


def test_hybrid_by_default_and_async(adapter_index: Path) -> None:
    retriever = OdqaRetriever(adapter_index, k=4)
    nodes = asyncio.run(retriever.aretrieve("vitamin deficiency"))
    assert {n.node.metadata["retriever"] for n in nodes} == {"hybrid"}
    assert len({n.node.ref_doc_id for n in nodes}) == 4
    retriever.close()


def test_bad_settings_are_refused_before_any_query(adapter_index: Path) -> None:
    with pytest.raises(OdqaError, match="k must be at least 1, got 0"):
        OdqaRetriever(adapter_index, k=0)
    with pytest.raises(OdqaError, match="unit must be one of"):
        OdqaRetriever(adapter_index, unit="sentence")
    with Searcher(adapter_index) as searcher, pytest.raises(OdqaError, match="not with an open"):
        OdqaRetriever(searcher, options=searcher.options)
