"""The question-answering commands: ``odqa ask``, ``odqa eval-qa``, ``odqa train reader``.

Plain functions, registered on the app by ``odqa.cli`` with their examples::

    app.command("ask", epilog=EPILOGS["ask"])(ask)
    app.command("eval-qa", epilog=EPILOGS["eval-qa"])(eval_qa)

``odqa.cli`` is imported inside each function: it imports this module.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from odqa.cli.options import Device, Retriever, parse_numbers
from odqa.errors import OdqaError

if TYPE_CHECKING:
    from odqa.read.answer import Answer, Reader

EPILOGS = {
    "ask": 'Example: odqa ask my-index "what causes scurvy?" --reader-model my-reader --top-k 3',
    "eval-qa": "Example: odqa eval-qa my-index --questions dev-v1.1.json --reader-model my-reader "
    "--top-k 1,2,3,5 --limit 500",
}
READERS = ("extractive", "yesno", "generative")

ReaderKind = Annotated[
    str, typer.Option("--reader", help="Reader kind: extractive, yesno or generative.")
]
ReaderModel = Annotated[
    Path | None,
    typer.Option(
        help="Reader model folder: a fine-tuned question-answering model (extractive; odqa "
        "train reader), a yes/no model (yesno) or a causal language model (generative)."
    ),
]
ApiBase = Annotated[
    str | None,
    typer.Option(
        help="Generative reader: OpenAI-compatible endpoint, e.g. http://localhost:8000/v1."
    ),
]
ApiModel = Annotated[str | None, typer.Option(help="Model name the --api-base endpoint serves.")]
ApiKeyEnv = Annotated[
    str, typer.Option(help="Environment variable holding the --api-base endpoint's key.")
]
Threshold = Annotated[
    float | None,
    typer.Option(help="Answer 'none' when the answer's probability is below this."),
]
QueryModel = Annotated[
    str | None, typer.Option("--model", help="Query encoder, if not the index's own model.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def make_reader(
    kind: str,
    model: Path | None,
    device: str | None,
    threshold: float | None = None,
    *,
    api_base: str | None = None,
    api_model: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
) -> Reader:
    """The reader the options ask for. odqa ships no reader model: ``--reader-model`` is
    required, or for the generative reader ``--api-base`` with ``--api-model`` instead."""
    if kind not in READERS:
        raise OdqaError(f"unknown reader {kind!r}; available: {', '.join(READERS)}")
    if threshold is not None and kind != "extractive":
        raise OdqaError("--no-answer-threshold applies to the extractive reader only")
    if kind == "generative":
        return make_generative_reader(model, device, api_base, api_model, api_key_env)
    if api_base is not None:
        raise OdqaError("--api-base is for --reader generative only")
    if kind == "yesno":
        if model is None:
            raise OdqaError(
                "--reader-model is required: the yes/no reader needs a trained yes/no model "
                "folder and odqa ships none (odqa train yesno)"
            )
        from odqa.read.yesno import YesNoReader

        return YesNoReader(model, device=device)
    if model is None:
        raise OdqaError(
            "--reader-model is required: the extractive reader needs a fine-tuned "
            "question-answering model folder and odqa ships none; train one with "
            "'odqa train reader SQUAD_JSON --out DIR'"
        )
    from odqa.read.extractive import ExtractiveReader

    return ExtractiveReader(model, device=device, no_answer_threshold=threshold)


def make_generative_reader(
    model: Path | None,
    device: str | None,
    api_base: str | None,
    api_model: str | None,
    api_key_env: str,
) -> Reader:
    """A generative reader on a local causal LM folder or on an OpenAI-compatible endpoint."""
    if (model is None) == (api_base is None):
        raise OdqaError(
            "--reader generative needs exactly one of --reader-model (a local causal language "
            "model folder) or --api-base URL --api-model NAME (an OpenAI-compatible endpoint)"
        )
    from odqa.read.generative import GenerativeReader, LocalCausalLM, OpenAICompatible

    if model is not None:
        return GenerativeReader(LocalCausalLM(model, device=device))
    if not api_model:
        raise OdqaError("--api-base needs --api-model NAME: the model the endpoint serves")
    return GenerativeReader(OpenAICompatible(api_base, api_model, api_key_env))


def snippet(text: str, start: int, end: int, width: int = 240) -> str:
    """About ``width`` characters of ``text`` around ``text[start:end]``, on one line."""
    left = max(0, start - (width - (end - start)) // 2)
    right = min(len(text), left + width)
    left = max(0, right - width)
    piece = " ".join(text[left:right].split())
    return ("…" if left else "") + piece + ("…" if right < len(text) else "")


def ask(
    index_dir: Annotated[Path, typer.Argument(help="An odqa index directory.")],
    question: Annotated[str, typer.Argument(help="The question.")],
    retriever: Retriever = None,
    top_k: Annotated[int, typer.Option(help="Passages read (best per document).")] = 3,
    reader: ReaderKind = "extractive",
    reader_model: ReaderModel = None,
    no_answer_threshold: Threshold = None,
    as_json: AsJson = False,
    model: QueryModel = None,
    device: Device = None,
    api_base: ApiBase = None,
    api_model: ApiModel = None,
    api_key_env: ApiKeyEnv = "OPENAI_API_KEY",
) -> None:
    """Answer a question from an index: retrieve passages, read the answer, show its source."""
    from odqa.cli.errors import user_errors
    from odqa.qa.pipeline import Pipeline
    from odqa.retrieve import Searcher

    with user_errors():
        chosen = make_reader(
            reader,
            reader_model,
            device,
            no_answer_threshold,
            api_base=api_base,
            api_model=api_model,
            api_key_env=api_key_env,
        )
        pipeline = Pipeline(
            Searcher(index_dir, model=model, device=device), chosen, retriever_name=retriever
        )
        answer = pipeline.ask(question, top_k=top_k)
        if as_json:
            evidence = [asdict(item) for item in answer.evidence]
            score = None if math.isnan(answer.score) else answer.score
            payload = {"question": question, **asdict(answer), "score": score, "evidence": evidence}
            typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
            return
        if answer.kind == "none":
            typer.echo(f"no answer (best probability {answer.score:.4f})")
            return
        typer.echo(f"answer: {answer.text}")
        typer.echo(f"score:  {answer.score:.4f}")
        if answer.kind == "generated":
            show_citations(answer)
            return
        for item in answer.evidence:
            title = f" — {item.title}" if item.title else ""
            typer.echo(f"source: {item.passage_id}{title}")
            typer.echo(f"        {snippet(item.text, item.start or 0, item.end or 0)}")


def show_citations(answer: Answer) -> None:
    """Each cited passage as ``[n] doc id — title`` and the start of its text; the passages
    read when the answer cites none."""
    if answer.evidence and answer.evidence[0].citation is None:
        typer.echo("no citation; passages read:")
    for item in answer.evidence:
        title = f" — {item.title}" if item.title else ""
        mark = "-" if item.citation is None else f"[{item.citation}]"
        typer.echo(f"{mark} {item.doc_id}{title}")
        typer.echo(f"    {snippet(item.text, 0, 0)}")


def eval_qa(
    index_dir: Annotated[Path, typer.Argument(help="An odqa index directory.")],
    questions: Annotated[
        Path, typer.Option(help="Questions with gold answers: SQuAD JSON, JSONL with answers.")
    ],
    reader_model: ReaderModel = None,
    top_k: Annotated[str, typer.Option(help="Passages read, e.g. 1,2,3,5.")] = "1,2,3,5",
    retriever: Retriever = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    reader: ReaderKind = "extractive",
    as_json: AsJson = False,
    model: QueryModel = None,
    device: Device = None,
) -> None:
    """Evaluate open-domain QA: EM and F1 at each top-k, with top-k retrieval accuracy."""
    from odqa.cli.errors import user_errors
    from odqa.corpus import read_queries
    from odqa.evaluate.answering import evaluate_qa
    from odqa.retrieve import Searcher

    with user_errors():
        cutoffs = parse_numbers(top_k, int) or []
        question_list = read_queries(questions)[:limit]
        metrics = evaluate_qa(
            Searcher(index_dir, model=model, device=device),
            make_reader(reader, reader_model, device),
            question_list,
            top_ks=cutoffs,
            retriever=retriever,
            show_progress=not as_json,
        )
        if as_json:
            typer.echo(json.dumps(metrics))
            return
        typer.echo(f"{'top-k':>6}  {'EM':>6}  {'F1':>6}  retrieval accuracy")
        for k in sorted(set(cutoffs)):
            em, f1, found = (metrics[f"{name}@{k}"] for name in ("em", "f1", "retrieval_accuracy"))
            typer.echo(f"{k:>6}  {em:6.2f}  {f1:6.2f}  {found:6.2f}")
        skipped = metrics["questions_without_answers"]
        note = f"; {skipped} without gold answers skipped" if skipped else ""
        typer.echo(f"percent of {metrics['questions']} questions{note}")
