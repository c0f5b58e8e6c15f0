"""Retrievers (BM25, dense, hybrid), fusion, and the ``Searcher`` over an index directory."""

from odqa.retrieve.base import Retriever
from odqa.retrieve.fusion import fuse
from odqa.retrieve.hit import Hit
from odqa.retrieve.hybrid import HybridRetriever
from odqa.retrieve.searcher import Searcher

__all__ = ["Hit", "HybridRetriever", "Retriever", "Searcher", "fuse"]
