"""The encode stage: a corpus's passages, cut once, with each kind's vectors.

:class:`EncodeStage` turns batches of documents into :class:`EncodedBatch` es: passages cut
by a :class:`Cutter` (decided by the encoders the index uses), each kind's encoding made here,
on a Ray cluster (:class:`RaySettings`), or read from a precomputed vectors folder
(:class:`VectorsFolder`, written by :func:`write_vectors`, ``odqa encode``). Kinds receive
what it yields; they never load an encoder to build.
"""

from odqa.encode.cluster import RaySettings
from odqa.encode.cutting import Cutter
from odqa.encode.encoders import TOKENS, VECTORS, Encoded, Encoder, TokenVectors
from odqa.encode.precompute import write_vectors
from odqa.encode.stage import EncodedBatch, EncodeStage, Encoding
from odqa.encode.vectors import VectorsFolder, VectorsWriter

__all__ = [
    "TOKENS",
    "VECTORS",
    "Cutter",
    "EncodeStage",
    "Encoded",
    "EncodedBatch",
    "Encoder",
    "Encoding",
    "RaySettings",
    "TokenVectors",
    "VectorsFolder",
    "VectorsWriter",
    "write_vectors",
]
