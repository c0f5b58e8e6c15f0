"""The yes/no reader's command: ``odqa train yesno``.

A plain function, registered on the train app by ``odqa.cli`` with its example::

    train_app.command("yesno", epilog=YESNO_EPILOG)(train_yesno_command)

``odqa.cli`` is imported inside the function: it imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odqa.errors import OdqaError

YESNO_EPILOG = (
    "Example: odqa train yesno 12B1_golden.json 12B2_golden.json --out my-yesno --epochs 3 "
    "--class-weights auto"
)

Device = Annotated[
    str | None, typer.Option(help="torch device: cpu, cuda, cuda:1 (default: auto).")
]
Precision = Annotated[
    str, typer.Option(help="auto (bf16 on GPU and bf16-capable CPUs), fp32 or bf16.")
]


def parse_class_weights(value: str) -> str | tuple[float, float] | None:
    """``auto``, ``none`` or ``W_NO,W_YES`` as :func:`~odqa.read.train_yesno.train_yesno`
    takes them."""
    word = value.strip().lower()
    if word == "auto":
        return "auto"
    if word == "none":
        return None
    try:
        w_no, w_yes = (float(part) for part in value.split(","))
    except ValueError as exc:
        raise OdqaError(f"--class-weights takes auto, none or W_NO,W_YES, got {value!r}") from exc
    return (w_no, w_yes)


def train_yesno_command(
    bioasq_json: Annotated[
        list[Path], typer.Argument(help="BioASQ JSON files; their yes/no questions are used.")
    ],
    out: Annotated[Path, typer.Option(help="Where the yes/no reader folder goes.")],
    base: Annotated[
        str | None,
        typer.Option(help="Encoder folder to start from; default: the embedded all-MiniLM-L6-v2."),
    ] = None,
    class_weights: Annotated[
        str,
        typer.Option(help="auto (inverse frequency over the training pairs), none, or W_NO,W_YES."),
    ] = "auto",
    lora: Annotated[
        bool, typer.Option(help="Train LoRA adapters (merged before saving) and the head only.")
    ] = False,
    lora_rank: Annotated[int, typer.Option(help="Rank of the LoRA adapters.")] = 8,
    epochs: Annotated[int, typer.Option(help="Passes over the (question, snippet) pairs.")] = 3,
    batch_size: Annotated[int, typer.Option(help="Pairs per step.")] = 16,
    learning_rate: Annotated[
        float | None, typer.Option(help="AdamW peak learning rate [default: 3e-5; LoRA 5e-4].")
    ] = None,
    max_length: Annotated[int, typer.Option(help="Pair length in tokens.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of the head's initialisation and shuffling.")] = 0,
    device: Device = None,
    precision: Precision = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
) -> None:
    """Fine-tune a yes/no reader on BioASQ yes/no questions with their snippets."""
    from odqa.cli import user_errors
    from odqa.read.train_yesno import read_yesno_questions, train_yesno

    with user_errors():
        weights = parse_class_weights(class_weights)
        questions = read_yesno_questions(bioasq_json)
        summary = train_yesno(
            questions,
            out,
            base=base,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            max_length=max_length,
            class_weights=weights,
            lora=lora,
            lora_rank=lora_rank,
            seed=seed,
            overwrite=overwrite,
            device=device,
            precision=precision,
            show_progress=True,
        )
        w_no, w_yes = summary["class_weights"]
        losses = ", ".join(f"{loss:.3f}" for loss in summary["loss"])
        yes = sum(question.label == "yes" for question in questions)
        typer.echo(
            f"trained on {summary['questions']} yes/no questions ({yes} yes, "
            f"{summary['questions'] - yes} no; {summary['pairs']} question-snippet pairs, class "
            f"weights no {w_no:.3f} yes {w_yes:.3f}): {summary['steps']} steps in "
            f"{summary['seconds']:.0f} s; loss by epoch {losses}"
        )
        typer.echo(f"yes/no reader written to {out}")
