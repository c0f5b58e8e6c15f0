"""Compressed late-interaction (ColBERTv2 / PLAID) index: PyTorch and NumPy, any device
(on the CPU, faiss's product quantiser finds the residual codes).

Build with :func:`build_late_index` (train, add chunks, finish), search with
:class:`LateIndex`, change with :func:`add_passages`, :func:`delete_passages` and
:func:`recluster`. :class:`ExactStore` and :func:`maxsim` score uncompressed embeddings.
"""

from odqa.index.late.buckets import BucketCodec
from odqa.index.late.codec import ResidualCodec, num_centroids, training_pids
from odqa.index.late.exact import ExactStore, exact_search, maxsim
from odqa.index.late.kmeans import kmeans
from odqa.index.late.product import ProductCodec
from odqa.index.late.search import LateIndex
from odqa.index.late.storage import LateIndexWriter, build_late_index
from odqa.index.late.updates import (
    RECLUSTER_FACTOR,
    AddResult,
    add_passages,
    delete_passages,
    recluster,
)
from odqa.index.settings import PlaidSettings, plaid_defaults

__all__ = [
    "RECLUSTER_FACTOR",
    "AddResult",
    "BucketCodec",
    "ExactStore",
    "LateIndex",
    "LateIndexWriter",
    "PlaidSettings",
    "ProductCodec",
    "ResidualCodec",
    "add_passages",
    "build_late_index",
    "delete_passages",
    "exact_search",
    "kmeans",
    "maxsim",
    "num_centroids",
    "plaid_defaults",
    "recluster",
    "training_pids",
]
