"""``odqa search``, ``odqa eval`` and ``odqa fuse``: search an index, score retrieval, fuse runs."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from odqa.cli.errors import user_errors
from odqa.cli.options import (
    AsJson,
    Fusion,
    Plot,
    QrelsFile,
    QueriesFile,
    Weights,
    Where,
    loaded_settings,
    parse_numbers,
    where_filter,
    with_search_options,
)
from odqa.errors import OdqaError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from odqa.corpus.records import Qrels, Query
    from odqa.retrieve import Searcher
    from odqa.retrieve.options import SearchOptions

SEARCH_EPILOG = (
    'Examples: odqa search my-index "what causes scurvy?" -k 5 --retriever hybrid\n\n'
    'odqa search my-index "what causes scurvy?" --retriever colbert --ndocs 1024\n\n'
    'odqa search my-index "what causes scurvy?" --where "year>=2018" --where source=pubmed,pmc'
)
EVAL_EPILOG = (
    "Examples: odqa eval my-index --queries queries.jsonl --qrels qrels/test.tsv --json\n\n"
    "odqa eval --run other-tool.trec --qrels qrels/test.tsv\n\n"
    "odqa eval my-index --queries queries.jsonl --qrels qrels/test.tsv --where lang=en\n\n"
    "odqa eval my-index --queries test.jsonl --qrels test.tsv --plot k.png\n\n"
    "odqa eval my-index --queries test.jsonl --qrels test.tsv --settings best.json"
)
FUSE_EPILOG = "Example: odqa fuse bm25.trec dense.trec --out hybrid.trec --method rrf"


@with_search_options
def search(
    index_dir: Annotated[Path, typer.Argument(help="An odqa index directory.")],
    query: Annotated[str, typer.Argument(help="The question or keywords.")],
    k: Annotated[int, typer.Option("-k", "--k", help="How many hits.")] = 10,
    unit: Annotated[
        str, typer.Option(help="document (best passage each) or passage.")
    ] = "document",
    where: Where = None,
    as_json: AsJson = False,
    *,
    options: "SearchOptions",
) -> None:
    """Search an index and print the hits with their text."""
    from odqa.render import hit_dict, hit_lines, to_json
    from odqa.retrieve import Searcher

    with user_errors(), Searcher(index_dir, options) as searcher:
        hits = searcher.search([query], k, unit=unit, where=where_filter(where))[0]
        if as_json:
            for hit in hits:  # JSON Lines: a hit a line
                typer.echo(to_json(hit_dict(hit)))
            return
        for line in hit_lines(hits):
            typer.echo(line)


@with_search_options
def eval_command(
    index_dir: Annotated[
        Path | None, typer.Argument(help="An odqa index (omit with --run).")
    ] = None,
    queries: QueriesFile = None,
    qrels: QrelsFile = None,
    run: Annotated[
        Path | None, typer.Option(help="Evaluate this TREC run file instead of searching.")
    ] = None,
    run_out: Annotated[Path | None, typer.Option(help="Write the run as a TREC run file.")] = None,
    accuracy_at: Annotated[
        str | None, typer.Option(help="Also top-k accuracy, e.g. 1,5,20.")
    ] = None,
    where: Where = None,
    plot: Plot = None,
    as_json: AsJson = False,
    *,
    options: "SearchOptions",
) -> None:
    """Evaluate retrieval: nDCG@10, Recall@10, Recall@100, MRR@10 (and top-k accuracy)."""

    from odqa.corpus import read_qrels, read_queries
    from odqa.evaluate import evaluate_run, read_trec_run
    from odqa.evaluate.ir import metrics_by_k
    from odqa.evaluate.retrieval import evaluate_index, judged_queries
    from odqa.render import metrics_lines, to_json
    from odqa.retrieve import Searcher

    with user_errors(plot):
        if plot is not None:
            from odqa.plots import require_matplotlib

            require_matplotlib()
        cutoffs = parse_numbers(accuracy_at, int) or []
        judgements_path = qrels or queries
        if judgements_path is None:
            raise OdqaError("give --qrels (or --queries in a format that carries judgements)")
        judgements = read_qrels(judgements_path)
        filter_by = where_filter(where)
        if run is not None and filter_by is not None:
            raise OdqaError("--where filters a search; it cannot apply to a --run file")
        curves: dict = {}
        if run is not None:
            loaded = read_trec_run(run)
            metrics = evaluate_run(loaded, judgements, accuracy_at=cutoffs)
            if plot is not None:
                curves[run.stem] = metrics_by_k(loaded, judgements)
        else:
            if index_dir is None or queries is None:
                raise OdqaError("give an INDEX_DIR and --queries, or --run with a TREC run file")
            query_list = read_queries(queries)
            judged = judged_queries(query_list, judgements, str(queries), str(judgements_path))
            refuse_tuned_on(judged, queries)
            with Searcher(index_dir, options) as searcher:
                metrics = evaluate_index(
                    searcher,
                    query_list,
                    judgements,
                    accuracy_at=cutoffs,
                    run_out=run_out,
                    show_progress=not as_json,
                    where=filter_by,
                )
                if plot is not None:
                    curves = retrieval_curves(
                        searcher, judged, judgements, filter_by, show_progress=not as_json
                    )
        if plot is not None:
            from odqa.plots import plot_by_k

            source = run.name if run is not None else index_dir.name
            title = f"{source}: retrieval against k ({metrics['queries']} judged queries)"
            plot_by_k(curves, plot, title=title)
        if as_json:
            typer.echo(to_json({**metrics, "plotted": curves} if plot else metrics))
            return
        for line in metrics_lines(metrics):
            typer.echo(line)
        if plot is not None:
            typer.echo(f"wrote {plot} ({', '.join(curves)})")


def retrieval_curves(
    searcher: "Searcher",
    queries: "Sequence[Query]",
    qrels: "Qrels",
    where: "Mapping[str, object] | None",
    *,
    show_progress: bool,
) -> dict:
    """nDCG and recall against k of each compared retriever (see compared_retrievers)."""
    from odqa.evaluate.ir import CURVE_KS, metrics_by_k
    from odqa.evaluate.retrieval import compared_retrievers, run_queries

    curves = {}
    for name in compared_retrievers(searcher):
        found = run_queries(
            searcher,
            queries,
            retriever=name,
            k=max(CURVE_KS),
            where=where,
            show_progress=show_progress,
        )
        curves[name] = metrics_by_k(found, qrels)
    return curves


def refuse_tuned_on(queries: "Sequence[Query]", source: Path) -> None:
    """Refuse to evaluate the settings file (``--settings``) on queries it was tuned on."""
    from odqa.tune.settings_file import check_disjoint

    settings = loaded_settings()
    if settings is not None:
        check_disjoint(settings, [query.id for query in queries], source)


def fuse(
    runs: Annotated[list[Path], typer.Argument(help="Two or more TREC run files.")],
    out: Annotated[Path, typer.Option(help="Where the fused TREC run goes.")],
    method: Fusion = "zscore",
    weights: Weights = None,
    k: Annotated[int, typer.Option("-k", "--k", "--depth", help="Documents kept per query.")] = 100,
) -> None:
    """Fuse TREC runs (of odqa or any other tool) into one."""
    from odqa.evaluate import read_trec_run, write_trec_run
    from odqa.evaluate.runs import ranked
    from odqa.retrieve.fusion import check_method
    from odqa.retrieve.fusion import fuse as fuse_lists

    with user_errors():
        check_method(method)
        if len(runs) < 2:
            raise OdqaError(f"fuse needs two or more run files, got {len(runs)}")
        numbers = parse_numbers(weights)
        if numbers is not None and len(numbers) != len(runs):
            raise OdqaError(f"{len(numbers)} weights given for {len(runs)} runs")
        if k < 1:
            raise OdqaError(f"-k must be at least 1, got {k}")
        loaded = [read_trec_run(path) for path in runs]
        fused = {}
        for query_id in sorted(set().union(*loaded)):
            lists = [ranked(run.get(query_id, {})) for run in loaded]
            fused[query_id] = dict(fuse_lists(lists, method, numbers)[:k])
        write_trec_run(fused, out, tag=f"odqa-fuse-{method}")
        typer.echo(f"fused {len(runs)} runs over {len(fused)} queries into {out}")
