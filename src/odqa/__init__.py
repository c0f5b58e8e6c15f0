"""odqa: open-domain question answering — index, search, evaluate.

>>> import odqa
>>> odqa.build_index("corpus.jsonl", "my-index", retrievers=["bm25", "dense"])  # doctest: +SKIP
>>> searcher = odqa.Searcher("my-index")  # doctest: +SKIP
>>> searcher.search(["what causes scurvy?"], k=5)[0][0].passage.text  # doctest: +SKIP
"""

from odqa._version import __version__
from odqa.corpus import (
    ChunkSpec,
    Document,
    Passage,
    Query,
    read_documents,
    read_qrels,
    read_queries,
)
from odqa.errors import InputError, OdqaError
from odqa.evaluate import evaluate_run, read_trec_run, write_trec_run
from odqa.evaluate.retrieval import evaluate_index, run_queries
from odqa.index import BuildOptions, Manifest, build_index
from odqa.index.late import PlaidSettings
from odqa.index.updates import add_documents, delete_documents
from odqa.retrieve import Hit, Searcher, fuse, rerank

__all__ = [
    "BuildOptions",
    "ChunkSpec",
    "Document",
    "Hit",
    "InputError",
    "Manifest",
    "OdqaError",
    "Passage",
    "PlaidSettings",
    "Query",
    "Searcher",
    "__version__",
    "add_documents",
    "build_index",
    "delete_documents",
    "evaluate_index",
    "evaluate_run",
    "fuse",
    "read_documents",
    "read_qrels",
    "read_queries",
    "read_trec_run",
    "rerank",
    "run_queries",
    "write_trec_run",
]
