"""Index directories: the collection, one folder per retriever kind, and a manifest."""

from odqa.index.bm25 import BM25Settings
from odqa.index.builder import build_index
from odqa.index.colbert import ColBERTSettings
from odqa.index.dense import DenseSettings
from odqa.index.manifest import FORMAT_VERSION, Manifest
from odqa.index.options import BuildOptions
from odqa.index.updates import add_documents, delete_documents

__all__ = [
    "FORMAT_VERSION",
    "BM25Settings",
    "BuildOptions",
    "ColBERTSettings",
    "DenseSettings",
    "Manifest",
    "add_documents",
    "build_index",
    "delete_documents",
]
