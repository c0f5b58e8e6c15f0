"""Fine-tuning a yes/no reader on BioASQ yes/no questions and their snippets.

Every (question, snippet) pair is one training example labelled with its question's answer:
BioASQ judges questions, not snippets, so a snippet of a "no" question is taught as saying no.
A two-label classification head (``{0: "no", 1: "yes"}``) goes on a base encoder (the embedded
all-MiniLM-L6-v2 by default) and the model is trained with class-weighted cross-entropy.

**Class weights** (``class_weights="auto"``) are computed once, over the pairs of the whole
training set (the loss's own units), by inverse frequency: ``w_c = n / (2 · n_c)``, so that
their mean over the pairs is 1 and each class carries half the total loss. A batch's loss is
the mean of its pairs' weighted losses (divided by the batch size, not by the weights' sum),
so a batch holding a single class keeps that class's weight.

The loop and the shared steps are the extractive reader's (:mod:`odqa.train.fitting`): AdamW,
linear warm-up over the first 10% of steps then linear decay, gradient norm clipped at 1,
seeded head, dropout and order. With ``lora`` only
low-rank adapters (peft's defaults for the architecture, e.g. BERT's attention query and value)
and the classification head are trained; the adapters are merged into the weights before
saving, so the folder loads as a plain model.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from odqa.corpus.schema import IdRegistry, fail, member, objects
from odqa.corpus.textio import load_json
from odqa.errors import OdqaError
from odqa.read.yesno import LABEL2ID, encode_pairs, load_yesno_model
from odqa.train.fitting import FineTuneConfig, fine_tuning

FULL_LEARNING_RATE = 3e-5
LORA_LEARNING_RATE = 5e-4

ClassWeights = str | tuple[float, float] | None
"""``"auto"`` (inverse frequency over the training pairs), ``None`` (unweighted) or
``(w_no, w_yes)``."""


@dataclass(frozen=True, slots=True)
class YesNoQuestion:
    """A yes/no question, its snippets' texts and its answer, ``"yes"`` or ``"no"``."""

    id: str
    question: str
    snippets: tuple[str, ...]
    label: str


def read_yesno_questions(paths: str | Path | Sequence[str | Path]) -> list[YesNoQuestion]:
    """The yes/no questions (``type`` "yesno") of BioASQ JSON files, in order; other types are
    skipped, and question ids must be unique across the files.

    Each needs a question text (``body``), at least one snippet with text (a text repeated
    within a question is kept once) and an ``exact_answer`` of "yes" or "no" (any case): an
    InputError names the file, the question id and the field otherwise.
    """
    seen = IdRegistry()
    questions = []
    for path in [paths] if isinstance(paths, str | Path) else paths:
        data = load_json(path)
        if not isinstance(data, dict):
            raise fail("expected a JSON object with a 'questions' array (BioASQ)", (path, None))
        for _, at, item in objects(data, "questions", path):
            qid = member(item, "id", str, path, at)
            seen.add(qid, (path, None), f"{at}.id")
            if member(item, "type", str, path, at) == "yesno":
                questions.append(_yesno_question(item, qid, path, at))
    return questions


def _yesno_question(item: dict[str, Any], qid: str, path: str | Path, at: str) -> YesNoQuestion:
    """One checked yes/no question."""
    body = member(item, "body", str, path, at).strip()
    if not body:
        raise fail(f"question {qid!r}: empty question text", (path, None), f"{at}.body")
    snippets = item.get("snippets") or []
    texts = [
        member(snippet, "text", str, path, snippet_at).strip()
        for _, snippet_at, snippet in (objects(item, "snippets", path, at) if snippets else ())
    ]
    unique = tuple(dict.fromkeys(text for text in texts if text))
    if not unique:
        raise fail(
            f"yes/no question {qid!r} has no snippet text: a yes/no answer needs evidence",
            (path, None),
            f"{at}.snippets",
        )
    answer = item.get("exact_answer")
    label = answer.strip().lower() if isinstance(answer, str) else None
    if label not in LABEL2ID:
        given = repr(answer) if "exact_answer" in item else "nothing"
        raise fail(
            f"question {qid!r}: expected 'yes' or 'no', got {given}",
            (path, None),
            f"{at}.exact_answer",
        )
    return YesNoQuestion(qid, body, unique, label)


def balanced_weights(labels: Sequence[str]) -> tuple[float, float]:
    """``(w_no, w_yes)`` by inverse frequency, ``n / (2 · n_class)``: their mean over
    ``labels`` is 1. Both classes must occur."""
    counts = [sum(label == name for label in labels) for name in ("no", "yes")]
    if not all(counts):
        raise OdqaError("training needs both yes and no examples")
    return (len(labels) / (2 * counts[0]), len(labels) / (2 * counts[1]))


def resolve_class_weights(option: ClassWeights, labels: Sequence[str]) -> tuple[float, float]:
    """The ``(w_no, w_yes)`` the loss uses: ``"auto"`` balanced, ``None`` both 1."""
    if option == "auto":
        return balanced_weights(labels)
    if option is None:
        return (1.0, 1.0)
    if isinstance(option, str) or len(option) != 2:
        raise OdqaError(f"class_weights must be 'auto', None or (w_no, w_yes), got {option!r}")
    weights = (float(option[0]), float(option[1]))
    if not all(math.isfinite(w) and w > 0 for w in weights):
        raise OdqaError(f"class weights must be positive and finite, got {option!r}")
    return weights


def weights_rule(option: ClassWeights) -> str:
    """How the weights were chosen, for the training record: auto, none or given."""
    if option is None:
        return "none"
    return "auto" if option == "auto" else "given"


@dataclass(frozen=True)
class YesNoTrainConfig(FineTuneConfig):
    """How a yes/no reader is fine-tuned: :class:`~odqa.train.fitting.FineTuneConfig`'s
    settings, the ``class_weights`` rule, and LoRA adapters of rank ``lora_rank`` with
    ``lora``. ``learning_rate`` ``None`` is 3e-5, or 5e-4 with ``lora``."""

    epochs: int = 3
    batch_size: int = 16
    learning_rate: float | None = None
    max_length: int = 256
    class_weights: ClassWeights = "auto"
    lora: bool = False
    lora_rank: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lora_rank < 1:
            raise OdqaError(f"lora_rank must be at least 1, got {self.lora_rank}")

    @property
    def peak_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return LORA_LEARNING_RATE if self.lora else FULL_LEARNING_RATE

    def own_record(self) -> dict[str, Any]:
        return {
            "class_weights_rule": weights_rule(self.class_weights),
            "lora_rank": self.lora_rank if self.lora else None,
        }


def train_yesno(
    questions: Sequence[YesNoQuestion],
    out_dir: str | Path,
    config: YesNoTrainConfig | None = None,
    *,
    base: str | Path | None = None,
    overwrite: bool = False,
    show_progress: bool = False,
    **settings: Any,
) -> dict[str, Any]:
    """Fine-tune a yes/no reader on ``questions`` (one example per question and snippet, with
    the question's answer) by ``config`` (any of its fields may be given as keywords instead:
    ``lora=True``) and save it (model, tokenizer, ``odqa_training.json`` with the settings) to
    ``out_dir``, which :class:`~odqa.read.yesno.YesNoReader` then loads.

    ``base`` is a local encoder folder (default: the embedded all-MiniLM-L6-v2). With ``lora``
    the adapters are merged before saving. The folder is written to a temporary sibling and
    renamed into place at the end; an existing one is refused unless ``overwrite``.

    Returns ``steps``, ``seconds``, ``questions``, ``pairs``, ``class_weights``
    (``[w_no, w_yes]``) and ``loss`` (mean per epoch).
    """
    config = replace(config or YesNoTrainConfig(), **settings)
    pairs = [(item.question, text, item.label) for item in questions for text in item.snippets]
    if not pairs:
        raise OdqaError("no yes/no questions with snippets to train on")
    labels = [LABEL2ID[label] for _, _, label in pairs]
    weights = resolve_class_weights(config.class_weights, [label for _, _, label in pairs])
    with fine_tuning(out_dir, config, base, load_yesno_model, overwrite=overwrite) as run:
        if config.lora:
            run.model = with_lora(run.model, config.lora_rank)
        features = encode_pairs(
            run.tokenizer, [q for q, _, _ in pairs], [t for _, t, _ in pairs], run.config.max_length
        )
        names = [name for name in run.tokenizer.model_input_names if name in features]
        examples = [{name: features[name][i] for name in names} for i in range(len(pairs))]
        class_weight = torch.tensor(weights, device=run.device)

        def batch_loss(chosen: list[int]) -> torch.Tensor:
            gold = torch.tensor([labels[i] for i in chosen], device=run.device)
            logits = run.model(**run.inputs([examples[i] for i in chosen])).logits
            each = F.cross_entropy(logits.float(), gold, reduction="none")
            return (each * class_weight[gold]).mean()

        losses, steps = run.fit(examples, batch_loss, "training yes/no", show_progress)
        model = run.model.merge_and_unload() if config.lora else run.model
        counts = {"questions": len(questions), "pairs": len(pairs), "class_weights": list(weights)}
        summary = run.save(model, losses, steps, counts)
    return summary


def with_lora(model: PreTrainedModel, rank: int) -> Any:
    """``model`` wrapped with trainable rank-``rank`` LoRA adapters (alpha ``2 · rank``,
    dropout 0.1) and a trainable classification head; everything else frozen."""
    try:
        from peft import LoraConfig, TaskType, get_peft_model
    except ImportError as exc:
        raise OdqaError("LoRA needs peft: pip install peft") from exc
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=rank, lora_alpha=2 * rank, lora_dropout=0.1)
    try:
        with warnings.catch_warnings():  # peft calls a transformers method deprecated in v5
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(model, config)
    except ValueError as exc:
        raise OdqaError(f"cannot put LoRA adapters on this model: {exc}") from exc
