"""Building an index directory from a corpus, streaming documents through in batches.

The build owns the collection and the manifest; the encode stage (:mod:`odqa.encode`) cuts
the passages and encodes them for every kind that needs it; each kind's share (analysis,
faiss, compression) is its builder's (:mod:`odqa.index.kind`), fed the same batches.

The corpus is read once for the main pass. Before it, the first batch decides the language
(:mod:`odqa.index.identify`) and the dense model
(:func:`odqa.index.languages.choose_dense_model`) from the same read; a progress bar
counts the corpus's lines first (fast: no parsing); a kind that trains on a sample of
documents (ColBERT) has the corpus read twice more to draw it (counting the non-empty
documents, then taking those chosen).
"""

from __future__ import annotations

import functools
import itertools
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from odqa.corpus import ChunkSpec, Document, is_empty, read_documents
from odqa.corpus.readers import count_documents
from odqa.encode import Cutter, EncodeStage, Encoding, RaySettings
from odqa.encode.cluster import shape_record
from odqa.encode.precompute import batches, write_vectors
from odqa.encode.vectors import SHARD_PASSAGES
from odqa.errors import InputError, OdqaError
from odqa.fs import LOG, atomic_directory, remove_leftovers, writer_lock
from odqa.index.catalog import kind_names
from odqa.index.collection import CollectionWriter
from odqa.index.identify import CollectionLanguage, document_texts, identify_collection
from odqa.index.kind import BuildStart, KindBuilder
from odqa.index.languages import choose_dense_model
from odqa.index.manifest import Manifest, is_index
from odqa.index.options import BuildOptions, build_options, precomputed_for
from odqa.index.plan import BuildSoFar, plan_line
from odqa.index.registry import kind_named
from odqa.index.settings import KindSettings

SKIPPED_IDS_KEPT = 100


def build_index(
    corpus: str | Path, index_dir: str | Path, options: BuildOptions | None = None, **settings
) -> Path:
    """Index ``corpus`` into ``index_dir`` atomically; returns the index path.

    Settings are a :class:`BuildOptions` or its fields as keywords, for example
    ``build_index("corpus.jsonl", "my-index", retrievers=["bm25"], language="en")``, and
    each kind's settings by its name (``dense=DenseSettings(index="ivfpq")``).

    Empty documents (no title, no text) are skipped, counted in the manifest and listed
    (first 100 ids). Any input error leaves no index behind and an existing one untouched.
    """
    options = build_options(options, settings)
    names = kind_names()
    unknown = sorted(set(options.retrievers) - set(names))
    if unknown or not options.retrievers:
        raise OdqaError(f"retrievers must be among {names}, got {list(options.retrievers)}")
    documents = read_documents(corpus, options.input_format)
    first = list(itertools.islice(documents, options.batch_docs))
    if not first:
        raise InputError("the corpus holds no documents", path=corpus)
    language = identify_collection(document_texts(first), options.language)
    options = replace(options, language=language.analysis)
    LOG.warning("note: %s", language.describe())
    options, chosen = choose_dense_model(first, options, language)
    if chosen:
        LOG.warning("note: %s", chosen)
    kinds = [kind_named(name) for name in names if name in options.retrievers]
    builders = {kind.name: kind.builder(options.settings_of(kind.name), options) for kind in kinds}
    stage = encode_stage(options, kinds)
    with writer_lock(index_dir):
        remove_leftovers(index_dir)
        with atomic_directory(index_dir, options.overwrite, is_index, "odqa index") as staging:
            run = _BuildRun(corpus, options, builders, stage, language)
            counts, skipped_ids = run.fill(staging, first, documents)
            manifest = Manifest(
                source=str(Path(corpus).resolve()),
                counts=counts,
                chunking=stage.cutter.record(),
                retrievers={name: builder.finish() for name, builder in builders.items()},
                skipped_ids=skipped_ids,
                built_on=run.built_on,
                language=language.record(),
            )
            manifest.write(staging)
    return Path(index_dir).resolve()


def encode_stage(options: BuildOptions, kinds: list) -> EncodeStage:
    """The encode stage of a build: each kind's encoder (a precomputed folder's vectors
    checked to be its, and cut as this build cuts), passages cut by the first one's
    tokenizer."""
    encoders = {kind.name: kind.encoder(options.settings_of(kind.name), options) for kind in kinds}
    cutter = Cutter.for_encoders(encoders.values(), options.chunk)
    encodings = {}
    for name, encoder in encoders.items():
        if encoder is None:
            continue
        folder = precomputed_for(name, options.embeddings_from, options.retrievers)
        if folder is not None:
            folder.check_encoder(encoder.describe())
            folder.check_chunking(cutter.spec.tokens, cutter.spec.overlap, cutter.name)
        encodings[name] = Encoding(encoder, folder)
    return EncodeStage(cutter, encodings, options.ray)


class _BuildRun:
    """One pass over the corpus: the collection written, every kind's builder fed."""

    def __init__(
        self,
        corpus: str | Path,
        options: BuildOptions,
        builders: dict[str, KindBuilder],
        stage: EncodeStage,
        language: CollectionLanguage,
    ) -> None:
        self.corpus, self.options, self.builders, self.stage = corpus, options, builders, stage
        self.language = language
        self.built_on: dict[str, Any] = {}

    def sample(
        self, size: int | Callable[[int], int], seed: int
    ) -> tuple[dict[int, Document], int]:
        """``size`` (or ``size(count)``) of the corpus's ``count`` non-empty documents drawn
        by a seeded generator, by their number among them, and ``count`` (the corpus read
        twice more)."""
        count = sum(1 for document in self.read() if not is_empty(document))
        size = size(count) if callable(size) else size
        rng = np.random.default_rng(seed)
        chosen = set(rng.choice(count, size=min(count, size), replace=False).tolist())
        numbered = enumerate(document for document in self.read() if not is_empty(document))
        return {number: document for number, document in numbered if number in chosen}, count

    def read(self) -> Iterator[Document]:
        return read_documents(self.corpus, self.options.input_format)

    def say_plan(self, total: int, so_far: BuildSoFar, staging: Path, progress: tqdm) -> None:
        """Say what the whole build will need; warn where it will not fit."""
        line, warnings = plan_line(total, so_far, self.builders, staging.parent)
        progress.write(line, file=sys.stderr)
        for warning in warnings:
            LOG.warning("warning: %s", warning)

    def fill(
        self, staging: Path, first: list[Document], rest: Iterable[Document]
    ) -> tuple[dict[str, int], list[str]]:
        """Stream the corpus in (``first``, its first documents, then ``rest``); returns the
        counts and the first skipped (empty) ids."""
        start = BuildStart(staging, first, self.stage, self.sample, self.language)
        for builder in self.builders.values():
            builder.start(start)
        total = None
        if self.options.show_progress:  # the lines of a line format, counted fast
            total = count_documents(self.corpus, self.options.input_format)
        progress = tqdm(
            desc="indexing", unit="doc", total=total, disable=not self.options.show_progress
        )
        collection = CollectionWriter(staging)
        skipped_ids: list[str] = []
        skipped = 0
        say = functools.partial(progress.write, file=sys.stderr)
        with self.stage.running(say) as encoded_batches:
            if self.stage.shape is not None:
                self.built_on = shape_record(self.stage.shape)
                progress.set_postfix_str(f"{self.stage.shape.workers} Ray workers", refresh=False)
            read = batches(itertools.chain(first, rest), self.options.batch_docs)
            plan_after = 2 if total and total > 2 * self.options.batch_docs else 1
            started = time.perf_counter()
            documents = passages = 0
            for batches_in, (batch, encoded) in enumerate(encoded_batches(read), start=1):
                empty = [document.id for document in batch if is_empty(document)]
                skipped += len(empty)
                skipped_ids += empty[: SKIPPED_IDS_KEPT - len(skipped_ids)]
                collection.add_documents(encoded.documents)
                collection.add_passages(encoded.passages)
                for builder in self.builders.values():
                    builder.add(encoded)
                documents += len(encoded.documents)
                passages += len(encoded.passages)
                if total and passages and batches_in == plan_after:
                    so_far = BuildSoFar(
                        documents,
                        passages,
                        collection.stored_bytes,
                        time.perf_counter() - started,
                        len(encoded.documents),
                    )
                    self.say_plan(total, so_far, staging, progress)
                started = time.perf_counter()
                progress.update(len(batch))
        progress.close()
        num_documents, num_passages = collection.close()
        if num_passages == 0:
            raise InputError("every document of the corpus is empty", path=self.corpus)
        counts = {"documents": num_documents, "passages": num_passages, "skipped_empty": skipped}
        return counts, skipped_ids


def encode_corpus(
    corpus: str | Path,
    out: str | Path,
    *,
    kind: str = "dense",
    model: str | None = None,
    settings: KindSettings | None = None,
    chunk: ChunkSpec | None = None,
    dtype: str = "float16",
    encode_batch: int | None = None,
    batch_docs: int = 512,
    device: str | None = None,
    precision: str = "auto",
    input_format: str = "auto",
    shard_passages: int = SHARD_PASSAGES,
    overwrite: bool = False,
    show_progress: bool = False,
    ray: RaySettings | None = None,
    restart: bool = False,
) -> Path:
    """``odqa encode``: the passages of ``corpus`` encoded once, as a build of ``kind``
    (dense or colbert) with ``model`` (and the kind's ``settings``) would encode them, into
    the vectors folder ``out`` that ``build_index(..., embeddings_from=out)`` reads; returns
    its path. Resumable: see :func:`odqa.encode.precompute.write_vectors`."""
    options = BuildOptions(
        retrievers=[kind],
        model=model,
        settings={} if settings is None else {kind: settings},
        encode_batch=encode_batch,
        device=device,
        precision=precision,
    )
    encoder = kind_named(kind).encoder(options.settings_of(kind), options)
    if encoder is None:
        raise OdqaError(f"--retriever {kind!r} reads texts: it has no vectors to precompute")
    return write_vectors(
        corpus,
        out,
        encoder,
        kind=kind,
        chunk=chunk or ChunkSpec(),
        dtype=dtype,
        batch_docs=batch_docs,
        input_format=input_format,
        shard_passages=shard_passages,
        overwrite=overwrite,
        show_progress=show_progress,
        ray=ray,
        restart=restart,
    )
