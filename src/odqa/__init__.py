"""odqa: open-domain question answering — index, search, answer, evaluate.

Everything a user needs is here, under one vocabulary: ``k`` for how many, ``retriever``
for which. Build an index of a corpus and search it (BM25 here, so no model is loaded):

>>> import json, tempfile
>>> from pathlib import Path
>>> import odqa
>>> folder = Path(tempfile.mkdtemp())
>>> corpus = folder / "corpus.jsonl"
>>> docs = [
...     {"id": "d1", "title": "Scurvy", "text": "Scurvy is caused by a lack of vitamin C."},
...     {"id": "d2", "title": "Rickets", "text": "Rickets comes from too little vitamin D."},
...     {"id": "d3", "title": "Beriberi", "text": "Beriberi follows a lack of thiamine."},
... ]
>>> _ = corpus.write_text("".join(json.dumps(doc) + "\\n" for doc in docs), encoding="utf-8")
>>> [document.title for document in odqa.read_documents(corpus)]
['Scurvy', 'Rickets', 'Beriberi']
>>> index = odqa.build_index(corpus, folder / "index", retrievers=["bm25"], language="en")
>>> with odqa.Searcher(index) as searcher:
...     hits = searcher.search(["what causes scurvy?"], k=2)[0]
>>> [(hit.rank, hit.doc_id, hit.passage.title) for hit in hits]
[(1, 'd1', 'Scurvy')]

How a search runs is one value, :class:`SearchOptions` (``Searcher(index, options)``, or its
fields as keywords: ``Searcher(index, fusion="rrf")``):

>>> options = odqa.SearchOptions(retriever="bm25")
>>> options.fusion, options.weights, options.exhaustive
('zscore', None, False)

Answer questions: a :class:`Pipeline` reads the top ``k`` passages with a reader — odqa's
(:func:`make_reader`: extractive, yes/no, generative) or any object with
``read(question, passages) -> Answer``:

>>> class LastWords:
...     def read(self, question, passages):
...         best = passages[0]
...         return odqa.Answer(" ".join(best.text.split()[-2:]).rstrip("."), 1.0, "span", (best,))
>>> with odqa.Searcher(index) as searcher:
...     answer = odqa.Pipeline(searcher, LastWords(), retriever="bm25").ask("scurvy?", k=1)
>>> answer.text, answer.evidence[0].doc_id
('vitamin C', 'd1')

Evaluate answering (EM, F1, retrieval accuracy at each k) and retrieval (nDCG@10, …):

>>> questions = [odqa.Query("q1", "what causes scurvy?", answers=("vitamin C",))]
>>> with odqa.Searcher(index) as searcher:
...     answering = odqa.evaluate_qa(searcher, LastWords(), questions, ks=(1,))
...     retrieval = odqa.evaluate_index(searcher, questions, {"q1": {"d1": 1}})
>>> answering["em@1"], answering["retrieval_accuracy@1"], retrieval["ndcg@10"]
(100.0, 100.0, 1.0)

Fuse ranked lists of any origin, best first:

>>> odqa.fuse([[("a", 3.0), ("b", 1.0)], [("b", 0.9), ("c", 0.5)]], "rrf")[0][0]
'b'

Add and delete documents without a rebuild:

>>> _ = odqa.add_documents(index, [odqa.Document("d4", "Pellagra follows a lack of niacin.")])
>>> _ = odqa.delete_documents(index, ["d2"])
>>> odqa.Manifest.read(index).counts["documents"]
3

Every error odqa raises on purpose is an :class:`OdqaError`, with a message a user can act on:

>>> try:
...     odqa.Searcher(folder / "nowhere")
... except odqa.OdqaError as error:
...     print(type(error).__name__)
IndexFormatError
>>> import shutil; shutil.rmtree(folder)

The names are imported when first used, so ``import odqa`` (and ``odqa --help``) stay quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from odqa.threads import set_worker_wait

set_worker_wait()  # before anything loads torch: libgomp reads it once (see odqa.threads)

from odqa._version import __version__  # noqa: E402
from odqa.errors import IndexFormatError, InputError, ModelMismatchError, OdqaError  # noqa: E402

if TYPE_CHECKING:
    from odqa.corpus import (
        ChunkSpec,
        Document,
        Passage,
        Query,
        read_documents,
        read_qrels,
        read_queries,
    )
    from odqa.evaluate import evaluate_run, read_trec_run, write_trec_run
    from odqa.evaluate.answering import evaluate_qa, evaluate_reader
    from odqa.evaluate.retrieval import evaluate_index, run_queries
    from odqa.index import (
        BM25Settings,
        BuildOptions,
        ColBERTSettings,
        DenseSettings,
        Manifest,
        add_documents,
        build_index,
        compact_index,
        delete_documents,
    )
    from odqa.index.settings import PlaidSettings
    from odqa.qa import Pipeline
    from odqa.read import (
        Answer,
        Evidence,
        ExtractiveReader,
        GenerativeReader,
        Reader,
        SentenceReader,
        YesNoReader,
        make_reader,
    )
    from odqa.retrieve import Hit, Searcher, SearchOptions, fuse, rerank

_LAZY = {
    # records and corpora
    "ChunkSpec": "odqa.corpus",
    "Document": "odqa.corpus",
    "Passage": "odqa.corpus",
    "Query": "odqa.corpus",
    "read_documents": "odqa.corpus",
    "read_qrels": "odqa.corpus",
    "read_queries": "odqa.corpus",
    # indexes
    "BM25Settings": "odqa.index",
    "BuildOptions": "odqa.index",
    "ColBERTSettings": "odqa.index",
    "DenseSettings": "odqa.index",
    "Manifest": "odqa.index",
    "PlaidSettings": "odqa.index.settings",
    "add_documents": "odqa.index",
    "compact_index": "odqa.index",
    "build_index": "odqa.index",
    "delete_documents": "odqa.index",
    # search
    "Hit": "odqa.retrieve",
    "SearchOptions": "odqa.retrieve",
    "Searcher": "odqa.retrieve",
    "fuse": "odqa.retrieve",
    "rerank": "odqa.retrieve",
    # answers
    "Answer": "odqa.read",
    "Evidence": "odqa.read",
    "ExtractiveReader": "odqa.read",
    "GenerativeReader": "odqa.read",
    "Pipeline": "odqa.qa",
    "Reader": "odqa.read",
    "SentenceReader": "odqa.read",
    "YesNoReader": "odqa.read",
    "make_reader": "odqa.read",
    # evaluation
    "evaluate_index": "odqa.evaluate.retrieval",
    "evaluate_qa": "odqa.evaluate.answering",
    "evaluate_reader": "odqa.evaluate.answering",
    "evaluate_run": "odqa.evaluate",
    "read_trec_run": "odqa.evaluate",
    "run_queries": "odqa.evaluate.retrieval",
    "write_trec_run": "odqa.evaluate",
}

__all__ = [
    "Answer",
    "BM25Settings",
    "BuildOptions",
    "ChunkSpec",
    "ColBERTSettings",
    "DenseSettings",
    "Document",
    "Evidence",
    "ExtractiveReader",
    "GenerativeReader",
    "Hit",
    "IndexFormatError",
    "InputError",
    "Manifest",
    "ModelMismatchError",
    "OdqaError",
    "Passage",
    "Pipeline",
    "PlaidSettings",
    "Query",
    "Reader",
    "SearchOptions",
    "Searcher",
    "SentenceReader",
    "YesNoReader",
    "__version__",
    "add_documents",
    "build_index",
    "compact_index",
    "delete_documents",
    "evaluate_index",
    "evaluate_qa",
    "evaluate_reader",
    "evaluate_run",
    "fuse",
    "make_reader",
    "read_documents",
    "read_qrels",
    "read_queries",
    "read_trec_run",
    "rerank",
    "run_queries",
    "write_trec_run",
]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (then it is a plain attribute)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'odqa' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
