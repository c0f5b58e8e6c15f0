"""The LangChain adapter, with the real langchain-core: a retriever, then a whole chain."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import ParrotFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough
from pydantic import ValidationError

from odqa.errors import OdqaError
from odqa.integrations.langchain import OdqaRetriever
from odqa.retrieve import Searcher


def test_it_is_a_langchain_retriever_returning_documents(adapter_index: Path) -> None:
    with OdqaRetriever(index=str(adapter_index), k=3, retriever="bm25") as retriever:
        assert isinstance(retriever, BaseRetriever)
        docs = retriever.invoke("scurvy: a vitamin deficiency?")
    assert all(isinstance(doc, Document) for doc in docs)
    assert len(docs) == 3 and docs[0].id == "d1#0"
    first = docs[0]
    assert first.page_content == "Scurvy is caused by a lack of vitamin C."
    assert first.metadata["doc_id"] == "d1" and first.metadata["title"] == "Scurvy"
    assert (first.metadata["start"], first.metadata["end"]) == (0, len(first.page_content))
    assert first.metadata["year"] == 2020 and first.metadata["source"] == "pubmed"
    assert first.metadata["retriever"] == "bm25"
    assert [doc.metadata["rank"] for doc in docs] == [1, 2, 3]
    scores = [doc.metadata["score"] for doc in docs]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]


def test_offsets_and_rows_point_into_the_index(adapter_index: Path) -> None:
    """The long document's matching passage is a later chunk: its offsets cut it from the
    document's text, and its row is the passage the searcher itself returns."""
    retriever = OdqaRetriever(index=adapter_index, k=6, retriever="bm25", unit="passage")
    docs = retriever.invoke("sailors feared scurvy at sea")
    ocean = next(doc for doc in docs if doc.metadata["doc_id"] == "d5")
    assert ocean.metadata["chunk"] > 0 and ocean.metadata["start"] > 0
    with Searcher(adapter_index) as searcher:
        text = searcher.collection.document(4).text
        assert text[ocean.metadata["start"] : ocean.metadata["end"]] == ocean.page_content
        hit = searcher.search(["sailors feared scurvy at sea"], 6, retriever="bm25",
                              unit="passage")[0][ocean.metadata["rank"] - 1]  # fmt: skip
    assert (hit.row, hit.doc_id, hit.score) == (
        ocean.metadata["row"],
        "d5",
        pytest.approx(ocean.metadata["score"]),
    )
    retriever.close()


def test_a_document_field_named_like_odqas_is_kept_aside(adapter_index: Path) -> None:
    docs = OdqaRetriever(index=adapter_index, k=1, retriever="bm25").invoke("rickets")
    assert docs[0].metadata["doc_id"] == "d2"
    assert docs[0].metadata["document_score"] == "high"
    assert isinstance(docs[0].metadata["score"], float)


def test_hybrid_over_an_open_searcher_which_stays_open(adapter_index: Path) -> None:
    searcher = Searcher(adapter_index)
    retriever = OdqaRetriever(index=searcher, k=4)
    docs = retriever.invoke("vitamin deficiency")
    assert {doc.metadata["retriever"] for doc in docs} == {"hybrid"}
    assert len({doc.metadata["doc_id"] for doc in docs}) == 4  # one passage per document
    retriever.close()
    assert searcher.search(["thiamine"], 1, retriever="bm25")[0][0].doc_id == "d3"
    searcher.close()


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(f"[{d.metadata['doc_id']}] {d.page_content}" for d in docs)


def test_a_retrieval_chain_end_to_end(adapter_index: Path) -> None:
    """retriever | format | prompt | a fake chat model that repeats its prompt | parser: the
    retrieved passages reach the model, best first."""
    retriever = OdqaRetriever(index=adapter_index, k=2, retriever="bm25")
    prompt = ChatPromptTemplate.from_messages(
        [("human", "Answer from the context.\n\nContext:\n{context}\n\nQuestion: {question}")]
    )
    chain = (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | prompt
        | ParrotFakeChatModel()
        | StrOutputParser()
    )
    answer = chain.invoke("what causes rickets?")
    assert isinstance(answer, str)
    assert answer.startswith("Answer from the context.\n\nContext:\n[d2] Rickets comes from")
    assert answer.endswith("Question: what causes rickets?")
    assert asyncio.run(chain.ainvoke("what causes rickets?")) == answer


class SlowSearcher(Searcher):
    """A searcher that takes 0.3 s and records the thread it ran on."""

    threads: list[int]

    def search(self, *args, **kwargs):
        self.threads.append(threading.get_ident())
        time.sleep(0.3)
        return super().search(*args, **kwargs)


def test_async_retrieval_leaves_the_event_loop_free(adapter_index: Path) -> None:
    searcher = SlowSearcher(adapter_index)
    searcher.threads = []
    retriever = OdqaRetriever(index=searcher, k=1, retriever="bm25")

    async def main() -> tuple[list[Document], int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        docs = await retriever.ainvoke("thiamine")
        ticker.cancel()
        return docs, ticks

    docs, ticks = asyncio.run(main())
    assert docs[0].metadata["doc_id"] == "d3"
    assert ticks >= 10  # the loop ran on while the search slept
    assert searcher.threads and searcher.threads[0] != threading.get_ident()
    searcher.close()


def test_bad_settings_are_refused_before_any_query(adapter_index: Path, tmp_path: Path) -> None:
    with pytest.raises(OdqaError, match="has no 'colbert' retriever; it has bm25, dense"):
        OdqaRetriever(index=adapter_index, retriever="colbert")
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        OdqaRetriever(index=adapter_index, k=0)
    with pytest.raises(OdqaError, match="nowhere"):
        OdqaRetriever(index=tmp_path / "nowhere")
