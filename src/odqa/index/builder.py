"""Building an index directory from a corpus, streaming documents through in batches."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from odqa.corpus import ChunkSpec, Document, Passage, chunk_documents, is_empty, read_documents
from odqa.errors import InputError, OdqaError
from odqa.fs import atomic_directory
from odqa.index import dense as dense_store
from odqa.index.analysis import make_analyzer
from odqa.index.bm25 import BM25_DEFAULTS, BM25Builder
from odqa.index.colbert import ColBERTBuild
from odqa.index.collection import CollectionWriter
from odqa.index.manifest import Manifest
from odqa.models import DenseEncoder
from odqa.models.checkpoint import ModelRef, load_transformer, resolve_model
from odqa.models.colbert import ColBERTEncoder
from odqa.models.device import pick_device

RETRIEVER_KINDS = ("bm25", "dense", "colbert")
SKIPPED_IDS_KEPT = 100


@dataclass
class BuildOptions:
    """Everything ``build_index`` can be told; the defaults are the documented ones."""

    retrievers: Sequence[str] = ("bm25", "dense")
    model: str | None = None
    colbert_model: str | None = None
    nbits: int = 2
    colbert_sample: int = 2048
    language: str = "auto"
    chunk: ChunkSpec = field(default_factory=ChunkSpec)
    dense_index: str = "flat"
    dense_dtype: str = "float32"
    bm25: dict = field(default_factory=lambda: dict(BM25_DEFAULTS))
    batch_docs: int = 512
    encode_batch: int = 64
    device: str | None = None
    precision: str = "auto"
    input_format: str = "auto"
    overwrite: bool = False
    show_progress: bool = False


def indexable_text(passage: Passage) -> str:
    """What BM25 and the dense encoder see of a passage: its title, then its text."""
    return f"{passage.title} {passage.text}".strip() if passage.title else passage.text


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
    options = replace(options or BuildOptions(), **settings)
    unknown = sorted(set(options.retrievers) - set(RETRIEVER_KINDS))
    if unknown or not options.retrievers:
        raise OdqaError(
            f"retrievers must be among {RETRIEVER_KINDS}, got {list(options.retrievers)}"
        )
    encoder = (
        DenseEncoder(options.model, device=options.device, precision=options.precision)
        if "dense" in options.retrievers
        else None
    )
    late = (
        ColBERTEncoder(
            options.colbert_model or options.model,
            device=options.device,
            precision=options.precision,
        )
        if "colbert" in options.retrievers
        else None
    )
    tokenizer, model_ref = chunking_tokenizer(options.model, encoder, late)
    documents = read_documents(corpus, options.input_format)
    with atomic_directory(index_dir, overwrite=options.overwrite) as staging:
        first = list(itertools.islice(documents, options.batch_docs))
        if not first:
            raise InputError("the corpus holds no documents", path=corpus)
        analyzer = None
        if "bm25" in options.retrievers:
            analyzer = make_analyzer(options.language, [f"{d.title} {d.text}" for d in first])
        run = _BuildRun(staging, options, encoder, analyzer)
        if late is not None:
            run.late = ColBERTBuild(
                staging, late, nbits=options.nbits, batch_size=options.encode_batch
            )
            run.late.train(
                lambda: read_documents(corpus, options.input_format),
                tokenizer,
                options.chunk,
                indexable_text,
                options.colbert_sample,
            )
        progress = tqdm(desc="indexing", unit="doc", disable=not options.show_progress)
        for batch in batches(itertools.chain(first, documents), options.batch_docs):
            run.add(batch, tokenizer)
            progress.update(len(batch))
        progress.close()
        counts = run.finish()
        if counts["passages"] == 0:
            raise InputError("every document of the corpus is empty", path=corpus)
        manifest = Manifest(
            source=str(Path(corpus).resolve()),
            counts=counts,
            chunking={
                "tokens": options.chunk.tokens,
                "overlap": options.chunk.overlap,
                "tokenizer": model_ref.name,
            },
            retrievers=run.settings(),
            skipped_ids=run.skipped_ids,
        )
        manifest.write(staging)
    return Path(index_dir).resolve()


def chunking_tokenizer(
    model: str | None, dense: DenseEncoder | None, late: ColBERTEncoder | None
) -> tuple[PreTrainedTokenizerBase, ModelRef]:
    """Passages are cut in the tokens of the first neural encoder (else the given model)."""
    if dense is not None:
        return dense.tokenizer, dense.ref
    if late is not None:
        return late.tokenizer, late.ref
    ref = resolve_model(model)
    tokenizer, _ = load_transformer(ref.path, pick_device("cpu"))
    return tokenizer, ref


class _BuildRun:
    """The state of one build: collection, BM25 tokens and dense vectors on disk."""

    def __init__(self, folder: Path, options: BuildOptions, encoder, analyzer) -> None:
        self.folder = folder
        self.options = options
        self.encoder: DenseEncoder | None = encoder
        self.collection = CollectionWriter(folder)
        self.bm25 = BM25Builder(analyzer) if analyzer is not None else None
        self.vectors_path = folder / "vectors.tmp"
        self.vectors = self.vectors_path.open("wb") if encoder is not None else None
        self.late: ColBERTBuild | None = None
        self.skipped_ids: list[str] = []
        self.skipped = 0

    def add(self, documents: list[Document], tokenizer) -> None:
        kept = []
        for document in documents:
            if is_empty(document):
                self.skipped += 1
                if len(self.skipped_ids) < SKIPPED_IDS_KEPT:
                    self.skipped_ids.append(document.id)
            else:
                kept.append(document)
        self.collection.add_documents(kept)
        passages = list(chunk_documents(kept, tokenizer, self.options.chunk))
        self.collection.add_passages(passages)
        texts = [indexable_text(passage) for passage in passages]
        if self.bm25 is not None:
            self.bm25.add(texts)
        if self.encoder is not None and texts:
            vectors = self.encoder.encode_documents(texts, batch_size=self.options.encode_batch)
            self.vectors.write(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
        if self.late is not None and texts:
            self.late.add(kept, passages, texts)

    def finish(self) -> dict[str, int]:
        documents, passages = self.collection.close()
        if passages:
            if self.bm25 is not None:
                self.bm25.save(self.folder / "bm25", **self.options.bm25)
            if self.encoder is not None:
                self._finish_dense(passages)
            if self.late is not None:
                self.late_settings = self.late.finish()
        if self.vectors is not None:
            self.vectors.close()
            self.vectors_path.unlink()
        return {"documents": documents, "passages": passages, "skipped_empty": self.skipped}

    def _finish_dense(self, passages: int) -> None:
        self.vectors.close()
        vectors = np.memmap(
            self.vectors_path, dtype=np.float32, mode="r", shape=(passages, self.encoder.dim)
        )
        self.factory = dense_store.factory_string(
            self.options.dense_index, self.options.dense_dtype, passages, self.encoder.dim
        )
        index = dense_store.build_faiss(vectors, self.factory)
        del vectors
        dense_store.save_faiss(index, self.folder / "dense")

    def settings(self) -> dict[str, dict]:
        settings: dict[str, dict] = {}
        if self.bm25 is not None:
            settings["bm25"] = {
                "library": "bm25s",
                **self.options.bm25,
                "analyzer": self.bm25.analyzer.config(),
                "vocabulary": len(self.bm25.vocab),
            }
        if self.encoder is not None:
            settings["dense"] = {
                **self.encoder.settings(),
                "faiss": self.factory,
                "kind": self.options.dense_index,
                "dtype": self.options.dense_dtype,
            }
        if self.late is not None:
            settings["colbert"] = self.late_settings
        return settings
