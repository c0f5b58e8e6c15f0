"""``odqa tune``: an Optuna study of the search settings on a dev set; the best as JSON."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from odqa.cli.errors import user_errors
from odqa.cli.options import (
    AsJson,
    Device,
    FirstN,
    PassagesTried,
    Plot,
    QrelsFile,
    QueriesFile,
    ReaderChoice,
    parse_numbers,
    with_reader_options,
)
from odqa.errors import OdqaError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from odqa.corpus.records import Qrels, Query
    from odqa.retrieve.options import SearchOptions
    from odqa.tune.settings_file import TunedSettings

TUNE_EPILOG = (
    "Examples: odqa tune my-index --queries dev.jsonl --qrels dev.tsv --trials 50 "
    "--out best.json --plot history.png\n\n"
    "odqa tune my-index --queries dev.jsonl --qrels dev.tsv --eval-queries test.jsonl "
    "--eval-qrels test.tsv --out best.json\n\n"
    "odqa tune my-index --questions dev.json --reader-model my-reader --top-k 1,2,3,5 "
    "--trials 30 --out best.json\n\n"
    "Then: odqa eval my-index --queries test.jsonl --qrels test.tsv --settings best.json"
)


@with_reader_options
def tune(
    index_dir: Annotated[Path, typer.Argument(help="An odqa index directory.")],
    out: Annotated[Path, typer.Option(help="Where the best settings go (JSON).")],
    queries: QueriesFile = None,
    qrels: QrelsFile = None,
    questions: Annotated[
        Path | None,
        typer.Option(help="Dev questions with gold answers (scored by the reader's EM/F1)."),
    ] = None,
    ks: PassagesTried = "1,2,3,5,10",
    objective: Annotated[
        str | None, typer.Option(help="ndcg@10 (queries) or f1 / em (questions; default f1).")
    ] = None,
    trials: Annotated[int, typer.Option(help="Optuna trials (the first: the defaults).")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the TPE sampler.")] = 0,
    limit: FirstN = None,
    eval_queries: Annotated[
        Path | None,
        typer.Option(help="Held-out queries: default vs tuned nDCG@10 on them after tuning."),
    ] = None,
    eval_qrels: Annotated[
        Path | None, typer.Option(help="Judgements of --eval-queries (default: that file).")
    ] = None,
    plot: Plot = None,
    device: Device = None,
    as_json: AsJson = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
    *,
    reading: ReaderChoice,
) -> None:
    """Tune fusion, weights, the retrievers fused, PLAID's knobs and the reader's k on a dev
    set (Optuna, seeded TPE; needs the 'tune' extra). --queries are scored by nDCG@10,
    --questions by the reader's F1 (or EM) over the --top-k values. The first trial is odqa's
    defaults, reading 3 passages (or the --top-k value nearest 3), so "default" and "best"
    compare honestly. Each retriever searches the dev set once; trials re-fuse its lists.
    The settings file is read by search, eval, eval-qa, ask and serve with --settings; it
    records the dev query ids, and evaluating on any of them is refused."""

    from odqa.corpus import read_qrels, read_queries
    from odqa.render import to_json
    from odqa.retrieve.options import SearchOptions
    from odqa.tune.run import DevSet, dev_queries
    from odqa.tune.run import tune as run_tune
    from odqa.tune.settings_file import write_settings
    from odqa.tune.study import optuna_module

    with user_errors(out):
        if out.exists() and not overwrite:
            raise OdqaError(f"{out} already exists; pass --overwrite to replace it")
        if (queries is None) == (questions is None):
            raise OdqaError("give --queries (with --qrels) or --questions (with a reader)")
        if plot is not None:
            from odqa.plots import require_matplotlib

            require_matplotlib()
        optuna_module()
        if questions is not None:
            dev = DevSet(read_queries(questions)[:limit], None, str(questions))
        else:
            judged_by = qrels or queries
            dev = DevSet(read_queries(queries)[:limit], read_qrels(judged_by), str(queries))
        held_out = _held_out(eval_queries, eval_qrels)
        if held_out is not None:
            scored_dev = dev_queries(dev, str(qrels or queries))
            held_ids = [query.id for query in held_out[0]]
            overlap = {query.id for query in scored_dev} & set(held_ids)
            if overlap:
                raise OdqaError(
                    f"{len(overlap)} queries of {eval_queries} are also in the dev set "
                    f"{dev.source} (e.g. {sorted(overlap)[0]!r}); keep them apart"
                )
        options = SearchOptions(device=device)
        reader = reading.make(device, index_dir) if reading.given else None
        settings, result = run_tune(
            index_dir,
            dev,
            trials=trials,
            seed=seed,
            reader=reader,
            reader_ks=parse_numbers(ks, int) or [],
            objective=objective,
            options=options,
            show_progress=not as_json,
        )
        summary = {
            "objective": settings.tuning["objective"],
            "default": result.default_value,
            "best": result.best_value,
            "search": settings.search,
            "reader_k": settings.reader_k,
            "first_trial_s": round(result.first_trial_s, 3),
            "trial_s": round(result.trial_s, 4),
        }
        if held_out is not None:
            summary["eval"] = _evaluate_both(index_dir, options, settings, *held_out)
        write_settings(out, settings)
        if plot is not None:
            from odqa.plots import plot_history

            plot_history(result.values, plot, settings.tuning["objective"])
        if as_json:
            typer.echo(to_json(summary))
            return
        typer.echo(
            f"{summary['objective']}: default {result.default_value:.4f} -> best "
            f"{result.best_value:.4f} on {settings.tuning['dev_queries']} dev queries"
        )
        typer.echo(f"settings: {to_json(settings.search)}, reader_k {settings.reader_k}")
        typer.echo(
            f"time: first trial {result.first_trial_s:.2f} s (searches), then "
            f"{result.trial_s:.3f} s a trial (median)"
        )
        if "eval" in summary:
            held = summary["eval"]
            typer.echo(
                f"held out ({held['queries']} queries): nDCG@10 default "
                f"{held['default']:.4f} -> tuned {held['tuned']:.4f}"
            )
        typer.echo(f"wrote {out}" + (f" and {plot}" if plot is not None else ""))


def _held_out(queries: Path | None, qrels: Path | None) -> "tuple[list[Query], Qrels] | None":
    """The evaluation queries (judged ones) and their qrels, when given."""
    from odqa.corpus import read_qrels, read_queries
    from odqa.evaluate.retrieval import judged_queries
    from odqa.tune.run import judgements_of

    if queries is None:
        if qrels is not None:
            raise OdqaError("--eval-qrels needs --eval-queries")
        return None
    judgements = read_qrels(qrels or queries)
    judged = judged_queries(read_queries(queries), judgements, str(queries), str(qrels or queries))
    return judged, judgements_of(judged, judgements)


def _evaluate_both(
    index_dir: Path,
    options: "SearchOptions",
    settings: "TunedSettings",
    queries: "Sequence[Query]",
    qrels: "Qrels",
) -> dict:
    """nDCG@10 on the held-out queries with the default settings and the tuned ones."""
    from odqa.evaluate.retrieval import evaluate_index
    from odqa.retrieve import Searcher
    from odqa.tune.settings_file import applied

    figures: dict = {"queries": len(queries)}
    tuned = applied(settings, options)
    for name, chosen in (("default", options), ("tuned", tuned)):
        with Searcher(index_dir, chosen) as searcher:
            figures[name] = evaluate_index(searcher, queries, qrels)["ndcg@10"]
    return figures
