"""Building an index directory from a corpus, streaming documents through in batches.

The build owns the collection and the manifest; each retriever kind's share (analysis,
encoding, compression) is its builder's (:mod:`odqa.index.kind`), fed the same batches.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from odqa.corpus import (
    WORDS,
    ChunkSpec,
    Document,
    Passage,
    chunk_documents,
    indexable_text,
    is_empty,
    kept_of,
    read_documents,
)
from odqa.corpus.readers import count_documents
from odqa.errors import InputError, OdqaError
from odqa.fs import LOG, atomic_directory, remove_leftovers, writer_lock
from odqa.index.cluster import Preparer, preparing, shape_record
from odqa.index.collection import CollectionWriter
from odqa.index.kind import CorpusPass, KindBuilder, PassageBatch
from odqa.index.languages import choose_dense_model
from odqa.index.manifest import Manifest, is_index
from odqa.index.options import BuildOptions, build_options
from odqa.index.plan import FirstBatch, plan_line
from odqa.index.registry import kind_named, kind_names
from odqa.index.vectors import VectorsFolder

SKIPPED_IDS_KEPT = 100


def batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def build_index(
    corpus: str | Path, index_dir: str | Path, options: BuildOptions | None = None, **settings
) -> Path:
    """Index ``corpus`` into ``index_dir`` atomically; returns the index path.

    Settings are a :class:`BuildOptions` or its fields as keywords, for example
    ``build_index("corpus.jsonl", "my-index", retrievers=["bm25"], language="en")``.

    Empty documents (no title, no text) are skipped, counted in the manifest and listed
    (first 100 ids). Any input error leaves no index behind and an existing one untouched.
    """
    options = build_options(options, settings)
    options, chosen = choose_dense_model(corpus, options)
    if chosen:
        LOG.warning("note: %s", chosen)
    names = kind_names()
    unknown = sorted(set(options.retrievers) - set(names))
    if unknown or not options.retrievers:
        raise OdqaError(f"retrievers must be among {names}, got {list(options.retrievers)}")
    builders = {
        name: kind_named(name).builder(options) for name in names if name in options.retrievers
    }
    tokenizer, tokenizer_name = chunking_tokenizer(builders.values())
    if options.embeddings_from is not None:
        vectors = VectorsFolder(options.embeddings_from)
        vectors.check_chunking(options.chunk.tokens, options.chunk.overlap, tokenizer_name)
    with writer_lock(index_dir):
        remove_leftovers(index_dir)
        with atomic_directory(index_dir, options.overwrite, is_index, "odqa index") as staging:
            run = _BuildRun(corpus, options, builders, tokenizer)
            counts, skipped_ids = run.fill(staging)
            manifest = Manifest(
                source=str(Path(corpus).resolve()),
                counts=counts,
                chunking={
                    "tokens": options.chunk.tokens,
                    "overlap": options.chunk.overlap,
                    "tokenizer": tokenizer_name,
                    **word_window(tokenizer, options.chunk),
                },
                retrievers={name: builder.finish() for name, builder in builders.items()},
                skipped_ids=skipped_ids,
                built_on=run.built_on,
            )
            manifest.write(staging)
    return Path(index_dir).resolve()


class _BuildRun:
    """One pass over the corpus: the collection written, every kind's builder fed."""

    def __init__(
        self,
        corpus: str | Path,
        options: BuildOptions,
        builders: dict[str, KindBuilder],
        tokenizer: Any,
    ) -> None:
        self.corpus, self.options, self.builders = corpus, options, builders
        self.tokenizer = tokenizer
        self.built_on: dict[str, Any] = {}

    def chunk(self, documents: Sequence[Document]) -> list[Passage]:
        return list(chunk_documents(documents, self.tokenizer, self.options.chunk))

    def read(self) -> Iterator[Document]:
        return read_documents(self.corpus, self.options.input_format)

    def count(self) -> int | None:
        """The corpus's documents, counted fast where its records are lines."""
        return count_documents(self.corpus, self.options.input_format)

    def say_plan(self, total: int, first: FirstBatch, staging: Path, progress: tqdm) -> None:
        """Say what the whole build will need; warn where it will not fit."""
        line, warnings = plan_line(total, first, self.builders, staging.parent)
        progress.write(line, file=sys.stderr)
        for warning in warnings:
            LOG.warning("warning: %s", warning)

    def fill(self, staging: Path) -> tuple[dict[str, int], list[str]]:
        """Stream the corpus in; returns the counts and the first skipped (empty) ids."""
        documents = self.read()
        first = list(itertools.islice(documents, self.options.batch_docs))
        if not first:
            raise InputError("the corpus holds no documents", path=self.corpus)
        for builder in self.builders.values():
            builder.start(staging, first, CorpusPass(self.read, self.chunk))
        total = self.count() if self.options.show_progress else None
        progress = tqdm(
            desc="indexing", unit="doc", total=total, disable=not self.options.show_progress
        )
        collection = CollectionWriter(staging)
        skipped_ids: list[str] = []
        skipped = 0
        with self.preparer(progress) as prepare:
            numbered = batches(itertools.chain(first, documents), self.options.batch_docs)
            for batch, (passages, encoded) in prepare(numbered):
                kept = kept_of(batch)
                empty = [document.id for document in batch if is_empty(document)]
                skipped += len(empty)
                skipped_ids += empty[: SKIPPED_IDS_KEPT - len(skipped_ids)]
                collection.add_documents(kept)
                collection.add_passages(passages)
                texts = [indexable_text(passage) for passage in passages]
                for builder in self.builders.values():
                    builder.add(PassageBatch(kept, passages, texts, encoded))
                if progress.n == 0 and total and passages:
                    first_batch = FirstBatch(len(kept), len(passages), collection.stored_bytes)
                    self.say_plan(total, first_batch, staging, progress)
                progress.update(len(batch))
        progress.close()
        num_documents, num_passages = collection.close()
        if num_passages == 0:
            raise InputError("every document of the corpus is empty", path=self.corpus)
        counts = {"documents": num_documents, "passages": num_passages, "skipped_empty": skipped}
        return counts, skipped_ids

    def remote_works(self) -> dict[str, Any]:
        """Each kind's share that runs on the Ray workers (asked only for a build there)."""
        return {
            name: work
            for name, builder in self.builders.items()
            if (work := builder.work()) is not None
        }

    @contextlib.contextmanager
    def preparer(self, progress: tqdm) -> Iterator[Preparer]:
        """Batches cut into passages here (each kind encodes its own in ``add``), or cut and
        encoded on the Ray cluster."""
        ray = self.options.ray
        works = self.remote_works if ray is not None else dict
        say = functools.partial(progress.write, file=sys.stderr)
        with preparing(ray, self.tokenizer, self.options.chunk, works, say) as (prepare, shape):
            if shape is not None:
                self.built_on = shape_record(shape)
                progress.set_postfix_str(f"{shape.workers} Ray workers", refresh=False)
            yield prepare


def word_window(tokenizer: Any, spec: ChunkSpec) -> dict[str, int]:
    """For passages cut in words, the window and overlap in words, as the manifest says."""
    if tokenizer is not WORDS:
        return {}
    words = WORDS.in_words(spec)
    return {"words": words.tokens, "overlap_words": words.overlap}


def chunking_tokenizer(builders: Iterable[KindBuilder]) -> tuple[Any, str]:
    """Passages are cut in the tokens of the first neural encoder, else in words."""
    for builder in builders:
        found = builder.tokenizer()
        if found is not None:
            tokenizer, ref = found
            return tokenizer, ref.name
    return WORDS, WORDS.name
