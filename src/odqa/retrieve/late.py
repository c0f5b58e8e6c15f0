"""Late-interaction retrieval (ColBERT) over the compressed index, and reranking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from odqa.index.collection import Collection
from odqa.index.late import LateIndex, PlaidSettings, maxsim
from odqa.index.late.exact import padded
from odqa.models.colbert import ColBERTEncoder
from odqa.retrieve.base import Retriever, hits_from_rows
from odqa.retrieve.hit import Hit

RERANK_DEPTH = 100


class ColBERTRetriever:
    """PLAID search (``exhaustive=False``, tuned by ``plaid``) or exact MaxSim over every
    passage."""

    name = "colbert"

    def __init__(
        self,
        index: LateIndex,
        encoder: ColBERTEncoder,
        collection: Collection,
        exhaustive: bool = False,
        plaid: PlaidSettings | None = None,
    ) -> None:
        self.index = index
        self.encoder = encoder
        self.collection = collection
        self.exhaustive = exhaustive
        self.plaid = plaid or PlaidSettings()

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        Q, qmask = self.encoder.encode_queries(list(queries))
        if self.exhaustive:
            rows, scores = self.index.exhaustive(Q, qmask, k)
        else:
            rows, scores = self.index.search(Q, qmask, k, **asdict(self.plaid))
        return hits_from_rows(self.collection, rows, scores)

    def rescore(self, query: str, rows: Sequence[int], k: int) -> list[Hit]:
        """Exact MaxSim of ``query`` over the given passage rows only, best ``k``."""
        Q, qmask = self.encoder.encode_queries([query])
        found, scores = self.index.exhaustive(Q, qmask, k, subset=list(rows))
        return hits_from_rows(self.collection, found, scores)[0]


@dataclass
class RerankRetriever:
    """A first-stage retriever's top ``depth`` passages, re-scored by ColBERT MaxSim."""

    first: Retriever
    late: ColBERTRetriever
    depth: int = RERANK_DEPTH

    @property
    def name(self) -> str:
        return f"{self.first.name}+colbert"

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        candidates = self.first.search(queries, max(k, self.depth))
        return [
            self.late.rescore(query, [hit.row for hit in hits], k) if hits else []
            for query, hits in zip(queries, candidates, strict=True)
        ]


def rerank(
    query: str,
    documents: Sequence[str],
    encoder: ColBERTEncoder | None = None,
    k: int | None = None,
) -> list[tuple[int, float]]:
    """Order ``documents`` by MaxSim with ``query``, no index needed: ``(position, score)``.

    ``encoder`` defaults to the embedded model used as zero-shot late interaction.
    """
    encoder = encoder or ColBERTEncoder()
    if not documents:
        return []
    Q, qmask = encoder.encode_queries([query])
    embeddings, doclens = encoder.encode_documents(list(documents))
    D, dmask = padded(embeddings, doclens)
    scores = maxsim(Q, qmask, D, dmask)[0].tolist()
    order = sorted(range(len(documents)), key=lambda i: (-scores[i], i))
    return [(i, scores[i]) for i in order[: k or len(documents)]]
