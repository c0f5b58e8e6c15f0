"""``odqa ask`` and ``odqa eval-qa``: answer questions from an index, score the answers."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from odqa.cli.errors import user_errors
from odqa.cli.options import (
    AsJson,
    FirstN,
    PassagesRead,
    PassagesTried,
    Plot,
    ReaderChoice,
    Where,
    loaded_settings,
    parse_numbers,
    passages_read,
    where_filter,
    with_reader_options,
    with_search_options,
)
from odqa.read.answer import DEFAULT_K

if TYPE_CHECKING:
    from odqa.retrieve.options import SearchOptions

ASK_EPILOG = (
    'Examples: odqa ask my-index "what causes scurvy?" --top-k 3 (no --reader-model: the best '
    "sentence)\n\n"
    'odqa ask my-index "what causes scurvy?" --reader-model my-reader --top-k 3\n\n'
    'odqa ask my-index "what causes scurvy?" --reader-model my-reader --settings best.json'
)
SENTENCE_NOTE = (
    "note: no --reader-model, so this is the passage sentence most like the question (embedded "
    "MiniLM, no training); a fine-tuned span reader is sharper: odqa train reader SQUAD_JSON "
    "--out DIR, then --reader-model DIR"
)
EVAL_QA_EPILOG = (
    "Example: odqa eval-qa my-index --questions dev-v1.1.json --reader-model my-reader "
    "--top-k 1,2,3,5 --limit 500\n\n"
    "odqa eval-qa my-index --questions dev.json --reader-model my-reader --top-k 1,2,3,5,10 "
    "--plot k.png"
)


@with_search_options
@with_reader_options
def ask(
    index_dir: Annotated[Path, typer.Argument(help="An odqa index directory.")],
    question: Annotated[str, typer.Argument(help="The question.")],
    k: PassagesRead = DEFAULT_K,
    where: Where = None,
    as_json: AsJson = False,
    *,
    options: "SearchOptions",
    reading: ReaderChoice,
) -> None:
    """Answer a question from an index: retrieve passages, read the answer, show its source."""
    from odqa.qa.pipeline import Pipeline
    from odqa.render import answer_dict, answer_lines, to_json
    from odqa.retrieve import Searcher

    with user_errors(), Searcher(index_dir, options) as searcher:
        chosen = reading.make(options.device, index_dir)
        pipeline = Pipeline(searcher, chosen, where=where_filter(where))
        answer = pipeline.ask(question, k=passages_read(k))
        if reading.kind == "sentence" and reading.reader is None:
            typer.echo(SENTENCE_NOTE, err=True)
        if as_json:
            typer.echo(to_json(answer_dict(answer, question)))
            return
        for line in answer_lines(answer):
            typer.echo(line)


@with_search_options
@with_reader_options
def eval_qa(
    index_dir: Annotated[Path, typer.Argument(help="An odqa index directory.")],
    questions: Annotated[
        Path, typer.Option(help="Questions with gold answers: SQuAD JSON, JSONL with answers.")
    ],
    ks: PassagesTried = "1,2,3,5",
    limit: FirstN = None,
    plot: Plot = None,
    as_json: AsJson = False,
    *,
    options: "SearchOptions",
    reading: ReaderChoice,
) -> None:
    """Evaluate open-domain QA: EM and F1 at each top-k, with top-k retrieval accuracy."""

    from odqa.corpus import read_queries
    from odqa.evaluate.answering import evaluate_qa
    from odqa.render import qa_metrics_lines, to_json
    from odqa.retrieve import Searcher
    from odqa.tune.settings_file import check_disjoint

    with user_errors(plot), Searcher(index_dir, options) as searcher:
        if plot is not None:
            from odqa.plots import require_matplotlib

            require_matplotlib()
        cutoffs = parse_numbers(ks, int) or []
        question_list = read_queries(questions)[:limit]
        settings = loaded_settings()
        if settings is not None:
            check_disjoint(settings, [question.id for question in question_list], questions)
        chosen = reading.make(options.device, index_dir)
        if reading.kind == "sentence" and reading.reader is None:
            typer.echo(SENTENCE_NOTE.replace("this is", "each answer is"), err=True)
        metrics = evaluate_qa(
            searcher, chosen, question_list, ks=cutoffs, show_progress=not as_json
        )
        others: dict = {}
        curves: dict = {}
        if plot is not None:
            from odqa.evaluate.retrieval import compared_retrievers
            from odqa.plots import plot_by_k

            for name in compared_retrievers(searcher):
                others[name] = metrics
                if name != searcher.default_retriever:
                    others[name] = evaluate_qa(
                        searcher, chosen, question_list, ks=cutoffs, retriever=name,
                        show_progress=not as_json,
                    )  # fmt: skip
            curves = {name: qa_curves(found, cutoffs) for name, found in others.items()}
            title = f"{index_dir.name}: answers against k ({metrics['questions']} questions)"
            plot_by_k(curves, plot, title=title, top=100.0, unit=" (%)")
        if as_json:
            typer.echo(to_json({**metrics, "plotted": curves} if plot else metrics))
            return
        for line in qa_metrics_lines(metrics, cutoffs):
            typer.echo(line)
        for name, found in others.items():
            if name != searcher.default_retriever:
                typer.echo(f"\n{name}:")
                for line in qa_metrics_lines(found, cutoffs):
                    typer.echo(line)
        if plot is not None:
            typer.echo(f"wrote {plot} ({', '.join(others)})")


def qa_curves(metrics: dict, ks: "list[int]") -> dict:
    """EM, F1 and retrieval accuracy of one retriever, each by k."""
    names = {"EM": "em", "F1": "f1", "retrieval accuracy": "retrieval_accuracy"}
    return {label: {k: metrics[f"{key}@{k}"] for k in ks} for label, key in names.items()}
