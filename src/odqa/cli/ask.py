"""``odqa ask`` and ``odqa eval-qa``: answer questions from an index, score the answers."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from odqa.cli.errors import user_errors
from odqa.cli.options import (
    AsJson,
    PassagesRead,
    ReaderChoice,
    parse_numbers,
    with_reader_options,
    with_search_options,
)

if TYPE_CHECKING:
    from odqa.retrieve.options import SearchOptions

ASK_EPILOG = (
    'Example: odqa ask my-index "what causes scurvy?" --top-k 3 (no --reader-model: the best '
    "sentence; with --reader-model my-reader: the answer's words)"
)
SENTENCE_NOTE = (
    "note: no --reader-model, so this is the passage sentence most like the question (embedded "
    "MiniLM, no training); a fine-tuned span reader is sharper: odqa train reader SQUAD_JSON "
    "--out DIR, then --reader-model DIR"
)
EVAL_QA_EPILOG = (
    "Example: odqa eval-qa my-index --questions dev-v1.1.json --reader-model my-reader "
    "--top-k 1,2,3,5 --limit 500"
)


@with_search_options
@with_reader_options
def ask(
    index_dir: Annotated[Path, typer.Argument(help="An odqa index directory.")],
    question: Annotated[str, typer.Argument(help="The question.")],
    k: PassagesRead = 3,
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
        chosen = reading.make(options.device)
        answer = Pipeline(searcher, chosen).ask(question, k=k)
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
    ks: Annotated[
        str, typer.Option("-k", "--k", "--top-k", help="Passages read, e.g. 1,2,3,5.")
    ] = "1,2,3,5",
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    as_json: AsJson = False,
    *,
    options: "SearchOptions",
    reading: ReaderChoice,
) -> None:
    """Evaluate open-domain QA: EM and F1 at each top-k, with top-k retrieval accuracy."""
    import json

    from odqa.corpus import read_queries
    from odqa.evaluate.answering import evaluate_qa
    from odqa.render import qa_metrics_lines
    from odqa.retrieve import Searcher

    with user_errors(), Searcher(index_dir, options) as searcher:
        cutoffs = parse_numbers(ks, int) or []
        question_list = read_queries(questions)[:limit]
        chosen = reading.make(options.device)
        if reading.kind == "sentence" and reading.reader is None:
            typer.echo(SENTENCE_NOTE.replace("this is", "each answer is"), err=True)
        metrics = evaluate_qa(
            searcher, chosen, question_list, ks=cutoffs, show_progress=not as_json
        )
        if as_json:
            typer.echo(json.dumps(metrics))
            return
        for line in qa_metrics_lines(metrics, cutoffs):
            typer.echo(line)
