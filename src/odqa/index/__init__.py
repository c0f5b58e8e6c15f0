"""Index directories: the collection, a BM25 index and a dense index, with a manifest."""

from odqa.index.builder import BuildOptions, build_index
from odqa.index.manifest import FORMAT_VERSION, Manifest

__all__ = ["FORMAT_VERSION", "BuildOptions", "Manifest", "build_index"]
