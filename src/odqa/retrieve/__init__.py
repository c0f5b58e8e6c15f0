"""Retrievers (BM25, dense, ColBERT, hybrid, reranking), fusion, and the ``Searcher``."""

from odqa.retrieve.base import Retriever
from odqa.retrieve.fusion import fuse
from odqa.retrieve.hit import Hit
from odqa.retrieve.hybrid import HybridRetriever
from odqa.retrieve.options import SearchOptions
from odqa.retrieve.rerank import rerank
from odqa.retrieve.searcher import Searcher

__all__ = ["Hit", "HybridRetriever", "Retriever", "SearchOptions", "Searcher", "fuse", "rerank"]
