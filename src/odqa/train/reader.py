"""Fine-tuning an extractive reader on SQuAD-format JSON.

A question-answering head is put on a base encoder (the embedded all-MiniLM-L6-v2 by default)
and the whole model is trained to point at each answer's first and last token. Questions are
read in the reader's own windows (:func:`~odqa.read.extractive.encode_windows`); a window that
does not hold the whole answer points at ``[CLS]`` (token 0). The loop is odqa's own
(:mod:`odqa.train.loop`): AdamW, linear warm-up over the first 10% of steps then linear decay,
gradient norm clipped at 1, length-grouped micro-batches (:mod:`odqa.train.fitting`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from odqa.corpus.schema import fail, member, objects
from odqa.corpus.textio import load_json
from odqa.errors import OdqaError
from odqa.evaluate.answering import evaluate_reader
from odqa.models.checkpoint import resolve_model, sha256_of
from odqa.read.extractive import ExtractiveReader, cut_question, encode_windows, load_qa_model
from odqa.train.fitting import TRAINING_RECORD, FineTuneConfig, fine_tuning
from odqa.train.losses import span_loss


@dataclass(frozen=True, slots=True)
class TrainingQuestion:
    """A SQuAD question with its paragraph and its first gold answer (character offsets)."""

    id: str
    question: str
    context: str
    answer_start: int
    answer_end: int


def read_training_questions(
    path: str | Path, articles: range | None = None
) -> tuple[list[TrainingQuestion], int]:
    """The answered questions of the chosen articles (0-based; all by default), and how many
    unanswered (SQuAD v2) questions were skipped.

    Every gold answer must sit where ``answer_start`` says: an InputError names the file, the
    question id and the answer's JSON path otherwise.
    """
    data = load_json(path)
    if not isinstance(data, dict):
        raise fail("expected a JSON object with a 'data' array (SQuAD)", (path, None))
    questions: list[TrainingQuestion] = []
    skipped = 0
    for index, article_at, article in objects(data, "data", path):
        if articles is not None and index not in articles:
            continue
        for _, paragraph_at, paragraph in objects(article, "paragraphs", path, article_at):
            context = member(paragraph, "context", str, path, paragraph_at)
            for _, at, qa in objects(paragraph, "qas", path, paragraph_at):
                qid = member(qa, "id", str, path, at)
                question = member(qa, "question", str, path, at)
                spans = _answer_spans(qa, qid, context, path, at)
                if not spans or not question.strip():
                    skipped += 1
                    continue
                questions.append(TrainingQuestion(qid, question.strip(), context, *spans[0]))
    if not questions:
        raise fail("no answered questions to train on (check --articles)", (path, None), "data")
    return questions, skipped


def _answer_spans(
    qa: dict[str, Any], qid: str, context: str, path: str | Path, at: str
) -> list[tuple[int, int]]:
    """``(start, end)`` character offsets of each gold answer, each checked against the text."""
    spans = []
    for _, answer_at, answer in objects(qa, "answers", path, at) if "answers" in qa else ():
        text = member(answer, "text", str, path, answer_at)
        start = member(answer, "answer_start", int, path, answer_at)
        found = context[start : start + len(text)]
        if found != text or not text:
            raise fail(
                f"question {qid!r}: the answer {text!r} is not at answer_start {start} of the "
                f"context (found {found!r})",
                (path, None),
                f"{answer_at}.answer_start",
            )
        spans.append((start, start + len(text)))
    return spans


def spread_questions(
    questions: Sequence[TrainingQuestion], count: int | None
) -> list[TrainingQuestion]:
    """``count`` of ``questions`` spread over their paragraphs: the first question of every
    paragraph, then the second of every paragraph, and so on (all of them for ``None``)."""
    if count is None or count >= len(questions):
        return list(questions)
    by_paragraph: dict[str, list[TrainingQuestion]] = {}
    for item in questions:
        by_paragraph.setdefault(item.context, []).append(item)
    rounds = max(len(group) for group in by_paragraph.values())
    ordered = [
        group[turn]
        for turn in range(rounds)
        for group in by_paragraph.values()
        if turn < len(group)
    ]
    return ordered[:count]


def training_windows(
    tokenizer: Any,
    questions: Sequence[TrainingQuestion],
    max_length: int,
    doc_stride: int,
    *,
    answer_windows_only: bool = False,
    show_progress: bool = False,
) -> list[dict[str, list[int] | int]]:
    """Model inputs of every window with ``start_positions``/``end_positions`` (0 = [CLS]
    when the window does not hold the whole answer; such windows are left out with
    ``answer_windows_only``)."""
    names = tokenizer.model_input_names
    windows = []
    for item in tqdm(questions, desc="windowing", unit="question", disable=not show_progress):
        question, _ = cut_question(tokenizer, item.question, max_length)
        encoded = encode_windows(tokenizer, question, [item.context], max_length, doc_stride)
        for window in range(len(encoded["input_ids"])):
            marks = encoded["offset_mapping"][window]
            context = [i for i, sid in enumerate(encoded.sequence_ids(window)) if sid == 1]
            start = end = 0
            first, last = context[0], context[-1]
            if marks[first][0] <= item.answer_start and marks[last][1] >= item.answer_end:
                start = max(i for i in context if marks[i][0] <= item.answer_start)
                end = min(i for i in context if marks[i][1] >= item.answer_end)
            elif answer_windows_only:
                continue
            features = {name: encoded[name][window] for name in names if name in encoded}
            windows.append({**features, "start_positions": start, "end_positions": end})
    return windows


def window_loss(model: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The mean loss of pointing at each window's answer start and end (training ``inputs``
    with ``start_positions``/``end_positions``); padding is never a candidate, so the loss
    does not depend on how wide a batch is padded."""
    starts, ends = inputs["start_positions"], inputs["end_positions"]
    features = {name: value for name, value in inputs.items() if not name.endswith("_positions")}
    output = model(**features)
    return span_loss(output.start_logits, output.end_logits, starts, ends, inputs["attention_mask"])


@dataclass(frozen=True)
class ReaderTrainConfig(FineTuneConfig):
    """How an extractive reader is fine-tuned; ``doc_stride`` is the tokens consecutive
    windows of a paragraph share; ``max_questions`` trains on that many questions spread over
    the paragraphs (:func:`spread_questions`); ``answer_windows_only`` leaves out the windows
    that do not hold the answer (the reader never picks ``[CLS]``, so they teach it little).

    The defaults, one epoch of small steps at a higher rate, answered better than two epochs
    of 32 at 1e-4 on 2,047 questions (for two seeds) and as well as three on 8,582, in a half
    to a third of the time (README, "Answers")."""

    epochs: int = 1
    batch_size: int = 8
    learning_rate: float = 2e-4
    max_length: int = 384
    doc_stride: int = 128
    max_questions: int | None = None
    answer_windows_only: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_questions is not None and self.max_questions < 1:
            raise OdqaError(f"max_questions must be at least 1, got {self.max_questions}")

    def own_record(self) -> dict[str, Any]:
        return {
            "doc_stride": self.doc_stride,
            "max_questions": self.max_questions,
            "answer_windows_only": self.answer_windows_only,
        }


def reusable(
    out_dir: str | Path, base: str | Path | None, sources: dict[str, Any], config: ReaderTrainConfig
) -> dict[str, Any] | None:
    """The training summary of the reader in ``out_dir`` if it was trained from ``base`` on
    the same data (``squad_sha256``, ``articles``) with ``config``'s settings, else None."""
    path = Path(out_dir) / TRAINING_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    wanted = {
        "base_sha256": resolve_model(base).sha256,
        "squad_sha256": sources["squad_sha256"],
        "articles": sources["articles"],
        **config.record(),
    }
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in wanted.items()):
        return None
    names = ("steps", "seconds", "examples", "windows", "skipped", "loss")
    return {**{name: record.get(name) for name in names}, "reused": True}


def train_reader(
    squad_json: str | Path,
    out_dir: str | Path,
    config: ReaderTrainConfig | None = None,
    *,
    base: str | Path | None = None,
    articles: range | None = None,
    eval_json: str | Path | None = None,
    overwrite: bool = False,
    reuse: bool = False,
    show_progress: bool = False,
    **settings: Any,
) -> dict[str, Any]:
    """Fine-tune a reader on ``squad_json`` by ``config`` (any of its fields may be given as
    keywords instead: ``epochs=1``) and save it (model, tokenizer, and
    ``odqa_training.json`` with the settings) to ``out_dir``, which
    :class:`~odqa.read.extractive.ExtractiveReader` then loads.

    ``base`` is a local encoder folder (default: the embedded all-MiniLM-L6-v2); ``articles``
    picks articles by 0-based index. The folder is written to a temporary sibling and renamed
    into place at the end; an existing one is refused unless ``overwrite``. With ``eval_json``
    the saved reader is scored (EM/F1) on that file's questions, each read in its own paragraph.

    With ``reuse``, a reader already in ``out_dir`` trained from the same base on the same
    data (by their sha256) with the same settings is kept, untrained again (its summary has
    ``reused`` true).

    Returns ``steps``, ``seconds``, ``examples`` (questions), ``windows``, ``skipped``
    (unanswered questions), ``loss`` (mean per epoch) and ``eval`` when asked.
    """
    config = replace(config or ReaderTrainConfig(), **settings)
    span = None if articles is None else f"{articles.start}-{articles.stop - 1}"
    sources = {
        "squad": str(squad_json),
        "squad_sha256": sha256_of(Path(squad_json)),
        "articles": span,
    }
    kept = reusable(out_dir, base, sources, config) if reuse else None
    if kept is not None:
        return kept
    questions, skipped = read_training_questions(squad_json, articles)
    questions = spread_questions(questions, config.max_questions)
    with fine_tuning(out_dir, config, base, load_qa_model, overwrite=overwrite) as run:
        config = run.config  # max_length capped at the model's positions
        windows = training_windows(
            run.tokenizer,
            questions,
            config.max_length,
            config.doc_stride,
            answer_windows_only=config.answer_windows_only,
            show_progress=show_progress,
        )

        def batch_loss(chosen: list[int]) -> torch.Tensor:
            return window_loss(run.model, run.inputs([windows[i] for i in chosen]))

        losses, steps = run.fit(windows, batch_loss, "training reader", show_progress)
        counts = {"examples": len(questions), "windows": len(windows), "skipped": skipped}
        summary = run.save(run.model, losses, steps, counts, sources)
    if eval_json is not None:
        reader = ExtractiveReader(
            out_dir,
            device=config.device,
            precision=config.precision,
            max_length=config.max_length,
            doc_stride=config.doc_stride,
        )
        summary["eval"] = evaluate_reader(reader, eval_json, show_progress=show_progress)
    return summary
