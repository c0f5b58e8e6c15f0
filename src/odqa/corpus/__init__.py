"""Reading corpora, queries and judgements, and cutting documents into passages."""

from odqa.corpus.chunking import (
    WORDS,
    ChunkSpec,
    chunk_documents,
    indexable_text,
    is_empty,
    kept_of,
)
from odqa.corpus.readers import read_documents, read_qrels, read_queries
from odqa.corpus.records import Document, Passage, Qrels, Query

__all__ = [
    "WORDS",
    "ChunkSpec",
    "Document",
    "Passage",
    "Qrels",
    "Query",
    "chunk_documents",
    "indexable_text",
    "is_empty",
    "kept_of",
    "read_documents",
    "read_qrels",
    "read_queries",
]
