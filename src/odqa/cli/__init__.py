"""The ``odqa`` command: thin wrappers that parse, call the library and print."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from odqa.cli.errors import user_errors
from odqa.cli.options import (
    CentroidScoreThreshold,
    Device,
    Exhaustive,
    Fusion,
    Model,
    Ncells,
    Ndocs,
    Precision,
    Retriever,
    Weights,
    parse_numbers,
    split_list,
)
from odqa.cli.qa import EPILOGS, ask, eval_qa
from odqa.cli.serve import SERVE_EPILOG, serve
from odqa.cli.train import MINE_EPILOG, mine, train_app
from odqa.errors import OdqaError

app = typer.Typer(
    help="odqa: index a collection, search it (BM25, dense, ColBERT, hybrid), evaluate, train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command(
    epilog="Example: odqa index corpus.jsonl my-index --retrievers bm25,dense --language auto"
)
def index(
    corpus: Annotated[
        Path,
        typer.Argument(
            help="JSONL, CSV/TSV, BEIR folder, SQuAD or BioASQ JSON, or a folder of .txt/.md."
        ),
    ],
    index_dir: Annotated[Path, typer.Argument(help="Where the index directory goes.")],
    retrievers: Annotated[
        str, typer.Option(help="Comma list of bm25, dense, colbert.")
    ] = "bm25,dense",
    model: Model = None,
    colbert_model: Annotated[
        str | None,
        typer.Option(help="ColBERT checkpoint (Stanford, PyLate or plain); default: --model."),
    ] = None,
    nbits: Annotated[
        int, typer.Option(help="ColBERT residual bits per dimension: 1, 2, 4, 8.")
    ] = 2,
    colbert_sample: Annotated[
        int, typer.Option(help="Documents sampled to train ColBERT centroids.")
    ] = 2048,
    language: Annotated[str, typer.Option(help="BM25 analysis: en, ko, generic or auto.")] = "auto",
    input_format: Annotated[
        str, typer.Option("--format", help="auto, jsonl, csv, tsv, beir, squad, bioasq, textdir.")
    ] = "auto",
    chunk_tokens: Annotated[int, typer.Option(help="Passage window, in the model's tokens.")] = 256,
    chunk_overlap: Annotated[int, typer.Option(help="Tokens shared by consecutive windows.")] = 64,
    dense_index: Annotated[
        str, typer.Option(help="faiss kind: flat (exact), hnsw, ivf, ivfpq.")
    ] = "flat",
    dense_dtype: Annotated[
        str, typer.Option(help="Vector storage: float32 or float16.")
    ] = "float32",
    k1: Annotated[float, typer.Option(help="BM25 k1.")] = 0.9,
    b: Annotated[float, typer.Option(help="BM25 b.")] = 0.4,
    batch_size: Annotated[int, typer.Option(help="Texts per encoding batch.")] = 64,
    device: Device = None,
    precision: Precision = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing index directory.")] = False,
) -> None:
    """Build an index directory from a corpus (atomically: a failed run leaves nothing)."""
    from odqa.corpus import ChunkSpec
    from odqa.index import BuildOptions, Manifest, build_index

    with user_errors():
        try:
            chunk = ChunkSpec(tokens=chunk_tokens, overlap=chunk_overlap)
        except ValueError as exc:
            raise OdqaError(str(exc)) from exc
        options = BuildOptions(
            retrievers=split_list(retrievers),
            model=model,
            colbert_model=colbert_model,
            nbits=nbits,
            colbert_sample=colbert_sample,
            language=language,
            chunk=chunk,
            dense_index=dense_index,
            dense_dtype=dense_dtype,
            bm25={"method": "lucene", "k1": k1, "b": b},
            encode_batch=batch_size,
            device=device,
            precision=precision,
            input_format=input_format,
            overwrite=overwrite,
            show_progress=True,
        )
        path = build_index(corpus, index_dir, options)
        typer.echo(Manifest.read(path).describe())
        typer.echo(f"index written to {path}")


@app.command(
    epilog='Examples: odqa search my-index "what causes scurvy?" -k 5 --retriever hybrid\n\n'
    'odqa search my-index "what causes scurvy?" --retriever colbert --ndocs 1024'
)
def search(
    index_dir: Annotated[Path, typer.Argument(help="An odqa index directory.")],
    query: Annotated[str, typer.Argument(help="The question or keywords.")],
    k: Annotated[int, typer.Option("-k", "--k", help="How many hits.")] = 10,
    retriever: Retriever = None,
    unit: Annotated[
        str, typer.Option(help="document (best passage each) or passage.")
    ] = "document",
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
    fusion: Fusion = "zscore",
    weights: Weights = None,
    exhaustive: Exhaustive = False,
    ncells: Ncells = None,
    ndocs: Ndocs = None,
    centroid_score_threshold: CentroidScoreThreshold = None,
    model: Model = None,
    device: Device = None,
) -> None:
    """Search an index and print the hits with their text."""
    with user_errors():
        searcher = open_searcher(
            index_dir,
            model,
            device,
            fusion,
            weights,
            exhaustive,
            ncells=ncells,
            centroid_score_threshold=centroid_score_threshold,
            ndocs=ndocs,
        )
        hits = searcher.search([query], k, retriever=retriever, unit=unit)[0]
        if as_json:
            typer.echo(json.dumps([hit_json(hit) for hit in hits], ensure_ascii=False, indent=2))
            return
        if not hits:
            typer.echo("no hits")
        for hit in hits:
            passage = hit.passage
            title = f" — {passage.title}" if passage.title else ""
            typer.echo(f"{hit.rank:>3}. {hit.score:.4f}  {hit.doc_id}{title}")
            typer.echo(f"     {shorten(passage.text)}")


def open_searcher(
    index_dir: Path,
    model: str | None,
    device: str | None,
    fusion: str,
    weights: str | None,
    exhaustive: bool,
    *,
    ncells: int | None,
    centroid_score_threshold: float | None,
    ndocs: int | None,
):
    """A Searcher from the options that ``search`` and ``eval`` share."""
    from odqa.index.late import PlaidSettings
    from odqa.retrieve import Searcher

    return Searcher(
        index_dir,
        model=model,
        device=device,
        fusion=fusion,
        weights=parse_numbers(weights),
        exhaustive=exhaustive,
        plaid=PlaidSettings(ncells, centroid_score_threshold, ndocs),
    )


def hit_json(hit) -> dict:
    passage = hit.passage
    return {
        "rank": hit.rank,
        "score": hit.score,
        "doc_id": hit.doc_id,
        "passage_id": hit.passage_id,
        "title": passage.title,
        "text": passage.text,
        "start": passage.start,
        "end": passage.end,
    }


def shorten(text: str, width: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command(
    "eval",
    epilog="Examples: odqa eval my-index --queries queries.jsonl --qrels qrels/test.tsv --json\n\n"
    "odqa eval --run other-tool.trec --qrels qrels/test.tsv",
)
def eval_command(
    index_dir: Annotated[
        Path | None, typer.Argument(help="An odqa index (omit with --run).")
    ] = None,
    queries: Annotated[
        Path | None, typer.Option(help="Queries: JSONL, TSV, BEIR, SQuAD, BioASQ.")
    ] = None,
    qrels: Annotated[
        Path | None, typer.Option(help="Judgements: TREC or BEIR TSV (default: from --queries).")
    ] = None,
    retriever: Retriever = None,
    run: Annotated[
        Path | None, typer.Option(help="Evaluate this TREC run file instead of searching.")
    ] = None,
    run_out: Annotated[Path | None, typer.Option(help="Write the run as a TREC run file.")] = None,
    accuracy_at: Annotated[
        str | None, typer.Option(help="Also top-k accuracy, e.g. 1,5,20.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    fusion: Fusion = "zscore",
    weights: Weights = None,
    exhaustive: Exhaustive = False,
    ncells: Ncells = None,
    ndocs: Ndocs = None,
    centroid_score_threshold: CentroidScoreThreshold = None,
    model: Model = None,
    device: Device = None,
) -> None:
    """Evaluate retrieval: nDCG@10, Recall@10, Recall@100, MRR@10 (and top-k accuracy)."""
    from odqa.corpus import read_qrels, read_queries
    from odqa.evaluate import evaluate_run, read_trec_run
    from odqa.evaluate.retrieval import evaluate_index, judged_queries

    with user_errors():
        cutoffs = parse_numbers(accuracy_at, int) or []
        judgements_path = qrels or queries
        if judgements_path is None:
            raise OdqaError("give --qrels (or --queries in a format that carries judgements)")
        judgements = read_qrels(judgements_path)
        if run is not None:
            metrics = evaluate_run(read_trec_run(run), judgements, accuracy_at=cutoffs)
        else:
            if index_dir is None or queries is None:
                raise OdqaError("give an INDEX_DIR and --queries, or --run with a TREC run file")
            query_list = read_queries(queries)
            judged_queries(query_list, judgements, str(queries), str(judgements_path))
            searcher = open_searcher(
                index_dir,
                model,
                device,
                fusion,
                weights,
                exhaustive,
                ncells=ncells,
                centroid_score_threshold=centroid_score_threshold,
                ndocs=ndocs,
            )
            metrics = evaluate_index(
                searcher,
                query_list,
                judgements,
                retriever=retriever,
                accuracy_at=cutoffs,
                run_out=run_out,
                show_progress=not as_json,
            )
        if as_json:
            typer.echo(json.dumps(metrics))
            return
        for key, value in metrics.items():
            typer.echo(
                f"{key:>24}  {value:.4f}" if isinstance(value, float) else f"{key:>24}  {value}"
            )


@app.command(epilog="Example: odqa info my-index")
def info(
    index_dir: Annotated[Path, typer.Argument(help="An odqa index directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Describe an index: format, source, counts, chunking and retrievers."""
    from dataclasses import asdict

    from odqa.index import Manifest

    with user_errors():
        manifest = Manifest.read(index_dir)
        typer.echo(json.dumps(asdict(manifest), indent=2) if as_json else manifest.describe())


@app.command(epilog="Example: odqa fuse bm25.trec dense.trec --out hybrid.trec --method rrf")
def fuse(
    runs: Annotated[list[Path], typer.Argument(help="Two or more TREC run files.")],
    out: Annotated[Path, typer.Option(help="Where the fused TREC run goes.")],
    method: Fusion = "zscore",
    weights: Annotated[str | None, typer.Option(help="One weight per run, e.g. 0.6,0.4.")] = None,
    depth: Annotated[int, typer.Option(help="Documents kept per query.")] = 100,
) -> None:
    """Fuse TREC runs (of odqa or any other tool) into one."""
    from odqa.evaluate import read_trec_run, write_trec_run
    from odqa.retrieve.fusion import fuse as fuse_lists

    with user_errors():
        loaded = [read_trec_run(path) for path in runs]
        fused = {}
        for query_id in sorted(set().union(*loaded)):
            lists = [
                sorted(run.get(query_id, {}).items(), key=lambda item: (-item[1], item[0]))
                for run in loaded
            ]
            fused[query_id] = dict(fuse_lists(lists, method, parse_numbers(weights))[:depth])
        write_trec_run(fused, out, tag=f"odqa-fuse-{method}")
        typer.echo(f"fused {len(runs)} runs over {len(fused)} queries into {out}")


@app.command(epilog="Example: odqa fetch urls.txt --out corpus.jsonl --concurrency 16 --per-host 2")
def fetch(
    urls: Annotated[Path, typer.Argument(help="A text file of URLs, one a line; # comments.")],
    out: Annotated[Path, typer.Option(help="Corpus JSONL, appended to: a re-run resumes.")],
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once.")] = 16,
    per_host: Annotated[int, typer.Option(help="Requests in flight per host.")] = 2,
    cache: Annotated[
        Path | None, typer.Option(help="Response cache folder (default: OUT.cache).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds allowed per request.")] = 20.0,
    retries: Annotated[
        int, typer.Option(help="Retries after 429, 5xx, timeouts and connection errors.")
    ] = 4,
) -> None:
    """Fetch web pages into a JSONL corpus (main text; PubMed: title and abstract)."""
    from tqdm.auto import tqdm

    from odqa.corpus.web import FetchOptions, fetch_corpus

    with user_errors():
        options = FetchOptions(
            concurrency=concurrency, per_host=per_host, timeout=timeout, retries=retries
        )
        try:
            with tqdm(desc="fetching", unit="url") as bar:
                summary = fetch_corpus(
                    urls,
                    out,
                    options,
                    cache_dir=cache,
                    on_start=lambda total: bar.reset(total=total),
                    on_result=lambda _: bar.update(),
                )
        except KeyboardInterrupt as exc:
            typer.echo("interrupted; run the same command again to resume", err=True)
            raise typer.Exit(130) from exc
        lines = "line" if summary.invalid == 1 else "lines"
        typer.echo(
            f"{summary.ok} ok, {summary.cached} cached, {summary.failed} failed, "
            f"{summary.skipped} skipped, {summary.invalid} invalid {lines}"
        )
        typer.echo(f"documents in {summary.out}; per-URL report in {summary.report}")


app.command(epilog=MINE_EPILOG)(mine)
app.command("ask", epilog=EPILOGS["ask"])(ask)
app.command("eval-qa", epilog=EPILOGS["eval-qa"])(eval_qa)
app.command("serve", epilog=SERVE_EPILOG)(serve)
app.add_typer(train_app, name="train")


def main() -> None:
    app(prog_name="odqa")


if __name__ == "__main__":
    sys.exit(main())
