"""Real SciFact token vectors for the ColBERT scale benchmark, encoded once and cached.

The first ``--documents`` SciFact documents are chunked as ``build_index`` chunks them and
encoded, with the test queries, by odqa's default ColBERT encoder (the embedded MiniLM,
bf16 autocast where the CPU has it). The vectors are turned down to ``--dim`` dimensions by
the principal axes of the document tokens and re-normalised (the issue's figures are for
dim 128; the embedded model writes 384). Cached under ``bench/results/cache/`` (ignored by
git) as ``scifact_tokens.pt``: passage tokens (float16), doclens, query tokens and mask.

    python bench/scale_colbert_vectors.py [--documents 1500] [--dim 128]
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from common import DATA, RESULTS
from odqa.corpus import (
    ChunkSpec,
    chunk_documents,
    indexable_text,
    read_documents,
    read_qrels,
    read_queries,
)
from odqa.models.colbert import ColBERTEncoder

SCIFACT = DATA / "beir-scifact"
CACHE = RESULTS / "cache" / "scifact_tokens.pt"


def principal_turn(tokens: torch.Tensor, dim: int) -> torch.Tensor:
    """(full dim, dim) float32: the ``dim`` strongest principal axes of ``tokens``."""
    values = tokens.double()
    strength, axes = torch.linalg.eigh(values.T @ values / values.shape[0])
    return axes[:, strength.argsort(descending=True)[:dim]].float()


def encode(documents: int, dim: int) -> dict:
    """Encode, turn and cache; returns what was cached."""
    encoder = ColBERTEncoder()
    chosen = list(itertools.islice(read_documents(SCIFACT), documents))
    passages = list(chunk_documents(chosen, encoder.tokenizer, ChunkSpec()))
    started = time.perf_counter()
    embeddings, doclens = encoder.encode_documents([indexable_text(p) for p in passages])
    encode_s = time.perf_counter() - started
    qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
    queries = [q.text for q in read_queries(SCIFACT) if q.id in qrels]
    Q, qmask = encoder.encode_queries(queries)
    turn = principal_turn(embeddings.float(), dim)
    normalize = torch.nn.functional.normalize
    record = {
        "embeddings": normalize(embeddings.float() @ turn, dim=-1).half(),
        "doclens": doclens,
        "queries": normalize(Q.float() @ turn, dim=-1) * qmask[..., None],
        "qmask": qmask,
        "source": {
            "documents": len(chosen),
            "passages": len(passages),
            "encoder_dim": encoder.dim,
            "dim": dim,
            "encode_s": round(encode_s, 1),
            "model": encoder.describe(),
        },
    }
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    torch.save(record, CACHE)
    return record


def load() -> dict:
    """The cached vectors (run this script first)."""
    if not CACHE.exists():
        raise SystemExit(f"{CACHE} is missing: run bench/scale_colbert_vectors.py first")
    return torch.load(CACHE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1500)
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    record = encode(args.documents, args.dim)
    print({**record["source"], "tokens": int(record["doclens"].sum())})


if __name__ == "__main__":
    main()
