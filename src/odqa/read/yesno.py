"""Yes/no reader: a sequence classifier reads the question with each passage.

The model is a Hugging Face ``...ForSequenceClassification`` folder with two labels, ``no`` and
``yes`` (``odqa train yesno`` writes one with ``id2label`` ``{0: "no", 1: "yes"}``). Each
passage is read with the question as one pair, ``[CLS] question [SEP] passage [SEP]``, cut to
``max_length`` tokens by trimming the longer of the two first.

**Aggregation rule.** Each pair gives a probability of "yes" (the softmax of its two logits);
the answer's probability of "yes" is their plain mean over the passages. The answer is "yes"
when that mean is at least 0.5, else "no"; its ``score`` is the mean probability of the answer
given. Every passage read is evidence, those that support the answer most first (ties keep the
given order).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel
from transformers import PreTrainedTokenizerBase as Tokenizer

from odqa.errors import OdqaError
from odqa.models.checkpoint import LOAD_ERRORS, ModelRef, load_failure, resolve_model
from odqa.models.device import autocast_context, pick_device
from odqa.read.answer import Answer
from odqa.read.extractive import PassageLike, as_evidence, quiet_transformers

ID2LABEL = {0: "no", 1: "yes"}
LABEL2ID = {label: index for index, label in ID2LABEL.items()}


def load_yesno_model(folder: Path, *, need_head: bool = True) -> tuple[Tokenizer, PreTrainedModel]:
    """Tokenizer and two-label sequence classification model of a local folder, on the CPU.

    With ``need_head`` a folder lacking any of the model's weights (a plain encoder has no
    classification head) or whose labels are not ``no`` and ``yes`` is refused; without it the
    head is freshly initialised with the labels of :data:`ID2LABEL`, as fine-tuning wants.
    """
    labels = {} if need_head else {"num_labels": 2, "id2label": ID2LABEL, "label2id": LABEL2ID}
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            model, info = AutoModelForSequenceClassification.from_pretrained(
                str(folder), output_loading_info=True, **labels
            )
    except LOAD_ERRORS as exc:
        raise load_failure(folder, "a sequence classification model", exc) from exc
    if need_head and info["missing_keys"]:
        missing = ", ".join(sorted(info["missing_keys"])[:3])
        raise OdqaError(
            f"{folder}: not a trained yes/no reader (no classification head: {missing} missing); "
            "fine-tune one with 'odqa train yesno'"
        )
    names = sorted(str(label).lower() for label in model.config.id2label.values())
    if names != ["no", "yes"]:
        raise OdqaError(f"{folder}: a yes/no reader has the labels no and yes, not {names}")
    return tokenizer, model


def yes_label(model: PreTrainedModel) -> int:
    """The output index of the label ``yes``."""
    return next(i for i, label in model.config.id2label.items() if str(label).lower() == "yes")


def encode_pairs(
    tokenizer: Tokenizer,
    questions: Sequence[str],
    texts: Sequence[str],
    max_length: int,
    *,
    tensors: bool = False,
) -> Any:
    """``[CLS] question [SEP] text [SEP]`` for each pair, the longer side trimmed first to fit
    ``max_length`` tokens (padded tensors with ``tensors``)."""
    return tokenizer(
        list(questions),
        list(texts),
        truncation="longest_first",
        max_length=max_length,
        padding="longest" if tensors else False,
        return_tensors="pt" if tensors else None,
    )


class YesNoReader:
    """Answers yes or no from passages with a sequence classifier (see the module's docstring
    for the aggregation rule).

    ``model_path`` is a local folder holding a trained yes/no classifier (``odqa train yesno``
    writes one); odqa ships none. ``max_length`` is the pair's length in tokens (capped at the
    model's limit), ``batch_size`` the pairs per forward pass.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str | None = None,
        precision: str = "auto",
        max_length: int = 256,
        batch_size: int = 16,
    ) -> None:
        if batch_size < 1:
            raise OdqaError(f"batch_size must be at least 1, got {batch_size}")
        self.ref: ModelRef = resolve_model(model_path)
        self.device = pick_device(device)
        self.precision = precision
        self.tokenizer, model = load_yesno_model(self.ref.path)
        self.model = model.to(self.device).eval()
        self.yes = yes_label(self.model)
        limit = getattr(self.model.config, "max_position_embeddings", 512)
        self.max_length = min(max_length, limit)
        if self.max_length < 8:
            raise OdqaError(f"max_length must be at least 8 tokens, got {self.max_length}")
        self.batch_size = batch_size

    def read(self, question: str, passages: Sequence[PassageLike]) -> Answer:
        """``yes`` or ``no`` for ``question`` from ``passages`` (blank ones are skipped).

        A yes/no answer needs evidence: no passage with text is an error, never a guess.
        """
        if not question.strip():
            raise OdqaError("empty question")
        readable = [item for item in map(as_evidence, passages) if item.text.strip()]
        if not readable:
            raise OdqaError(
                "a yes/no answer needs evidence: no passage with text was given to read"
            )
        yes = self.yes_probabilities(question.strip(), [item.text for item in readable])
        mean = sum(yes) / len(yes)
        says_yes = mean >= 0.5
        support = yes if says_yes else [1.0 - p for p in yes]
        order = sorted(range(len(readable)), key=lambda i: -support[i])
        text, score = ("yes", mean) if says_yes else ("no", 1.0 - mean)
        return Answer(text, score, "yesno", tuple(readable[i] for i in order))

    @torch.inference_mode()
    def yes_probabilities(self, question: str, texts: Sequence[str]) -> list[float]:
        """The probability of "yes" of each ``(question, text)`` pair, in batches."""
        names = self.tokenizer.model_input_names
        probabilities: list[float] = []
        for first in range(0, len(texts), self.batch_size):
            chunk = texts[first : first + self.batch_size]
            pairs = encode_pairs(
                self.tokenizer, [question] * len(chunk), chunk, self.max_length, tensors=True
            )
            batch = {name: pairs[name].to(self.device) for name in names if name in pairs}
            with autocast_context(self.device, self.precision):
                logits = self.model(**batch).logits
            probabilities += torch.softmax(logits.float(), dim=-1)[:, self.yes].tolist()
        return probabilities
