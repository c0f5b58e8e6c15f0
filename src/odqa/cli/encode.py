"""``odqa encode``: encode a corpus's passages once into a precomputed-vectors folder."""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from odqa.cli.errors import fail, user_errors
from odqa.cli.options import (
    ChunkOverlap,
    ChunkTokens,
    ColBERTModel,
    CorpusPath,
    Device,
    EncodeBatch,
    InputFormat,
    Model,
    Precision,
    RayAddress,
    RayCpusPerWorker,
    RayGpusPerWorker,
    RayWorkers,
    ray_settings,
)

ENCODE_EPILOG = (
    "Example: odqa encode corpus.jsonl corpus-vectors --retriever dense, then "
    "odqa index corpus.jsonl my-index --retrievers bm25,dense --embeddings-from corpus-vectors"
    "\n\nOn a Ray cluster: odqa encode corpus.jsonl corpus-vectors --ray auto. A run cut "
    "short keeps its finished shards: the same command again encodes only the rest."
)


@contextlib.contextmanager
def kept_on_interrupt(out: Path) -> Iterator[None]:
    """Ctrl-C: say where the finished shards are kept and how to take them up."""
    from odqa.encode.vectors import unfinished_folder

    try:
        yield
    except KeyboardInterrupt as exc:
        kept = unfinished_folder(out.resolve())
        if not kept.is_dir():
            raise
        raise fail(
            f"interrupted; the finished shards are kept in {kept}: the same command encodes "
            "the rest (--restart starts afresh)",
            130,
        ) from exc


def encode(
    corpus: CorpusPath,
    out: Annotated[Path, typer.Argument(help="Where the vectors folder goes.")],
    retriever: Annotated[
        str, typer.Option(help="dense (one vector a passage) or colbert (token vectors).")
    ] = "dense",
    model: Model = None,
    colbert_model: ColBERTModel = None,
    input_format: InputFormat = "auto",
    chunk_tokens: ChunkTokens = 256,
    chunk_overlap: ChunkOverlap = 64,
    dtype: Annotated[str, typer.Option(help="Stored values: float16 or float32.")] = "float16",
    encode_batch: EncodeBatch = None,
    device: Device = None,
    precision: Precision = "auto",
    shard_passages: Annotated[int, typer.Option(help="Passages a shard file holds.")] = 100_000,
    ray: RayAddress = None,
    ray_workers: RayWorkers = None,
    ray_cpus_per_worker: RayCpusPerWorker = 1,
    ray_gpus_per_worker: RayGpusPerWorker = 0.0,
    restart: Annotated[
        bool,
        typer.Option(help="Discard the shards an interrupted run of this job kept; start afresh."),
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing vectors folder.")] = False,
) -> None:
    """Encode a corpus's passages, cut as odqa index cuts them, into a vectors folder that
    odqa index --embeddings-from reads instead of encoding (it appears only when complete;
    an interrupted run keeps its finished shards and the same command takes them up)."""
    from odqa.corpus import ChunkSpec
    from odqa.encode import VectorsFolder
    from odqa.index.builder import encode_corpus
    from odqa.index.settings import ColBERTSettings

    with user_errors(out), kept_on_interrupt(out):
        path = encode_corpus(
            corpus,
            out,
            kind=retriever,
            model=model,
            settings=ColBERTSettings(model=colbert_model) if retriever == "colbert" else None,
            chunk=ChunkSpec(tokens=chunk_tokens, overlap=chunk_overlap),
            dtype=dtype,
            encode_batch=encode_batch,
            device=device,
            precision=precision,
            input_format=input_format,
            shard_passages=shard_passages,
            overwrite=overwrite,
            show_progress=True,
            ray=ray_settings(ray, ray_workers, ray_cpus_per_worker, ray_gpus_per_worker),
            restart=restart,
        )
        written = VectorsFolder(path)
        typer.echo(
            f"{written.passages:,} passages, {written.kind} vectors of {written.dim} "
            f"({written.dtype}, {len(written.shards)} shards) written to {path}"
        )
