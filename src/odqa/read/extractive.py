"""Extractive reader: the best answer span across retrieved passages.

A question-answering model (a Hugging Face ``...ForQuestionAnswering`` folder with a fast
tokenizer) gives every token of a passage a start and an end logit. Passages longer than the
model takes are read in overlapping windows.

**Score rule.** A candidate is a span of context tokens (end at or after start, at most
``max_answer_tokens`` long) whose start is among the ``n_best`` best starts and whose end is among
the ``n_best`` best ends of its window; the same span seen in two windows keeps its better
logit. Its combined logit is ``start_logit + end_logit + retrieval_weight * z``, where ``z`` is
its passage's retrieval score standardised over the passages read (mean 0, standard deviation
1; 0 when they are all equal). The answer is the candidate with the highest combined logit
(ties: earlier passage, then earlier start); its ``score`` is its softmax probability over all
candidates of all passages. Below ``no_answer_threshold`` the answer is ``kind="none"``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, PreTrainedModel
from transformers import PreTrainedTokenizerBase as Tokenizer
from transformers.utils import logging as hf_logging

from odqa.errors import OdqaError
from odqa.models.batching import length_batches
from odqa.models.checkpoint import LOAD_ERRORS, ModelRef, load_failure, resolve_model
from odqa.models.device import autocast_context, pick_device
from odqa.read.answer import Answer, Evidence

PassageLike = Evidence | tuple[str, str, str, float] | str
"""An :class:`Evidence` (or any object with ``text``, ``doc_id``, ``passage_id``, and optionally
``title`` and ``retrieval_score``), a ``(text, doc_id, passage_id, retrieval_score)`` tuple, or
a bare text."""


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """No transformers progress bars or load reports inside the block."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_qa_model(folder: Path, *, need_head: bool = True) -> tuple[Tokenizer, PreTrainedModel]:
    """Fast tokenizer and question-answering model of a local folder, on the CPU.

    With ``need_head`` a folder without trained ``qa_outputs`` weights (a plain encoder) is
    refused; without it the head is freshly initialised, as fine-tuning wants.
    """
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            model, info = AutoModelForQuestionAnswering.from_pretrained(
                str(folder), output_loading_info=True
            )
    except LOAD_ERRORS as exc:
        raise load_failure(folder, "a question-answering model", exc) from exc
    if not tokenizer.is_fast:
        raise OdqaError(f"{folder}: odqa needs a fast (Rust) tokenizer; add a tokenizer.json")
    if need_head and any("qa_outputs" in key for key in info["missing_keys"]):
        raise OdqaError(
            f"{folder}: not a trained reader (no question-answering head); fine-tune one with "
            "'odqa train reader'"
        )
    return tokenizer, model


def readable_evidence(question: str, passages: Sequence[PassageLike]) -> list[Evidence]:
    """The passages with text, as :class:`Evidence`; an error for an empty question."""
    if not question.strip():
        raise OdqaError("empty question")
    return [item for item in map(as_evidence, passages) if item.text.strip()]


def as_evidence(passage: PassageLike) -> Evidence:
    """The :class:`Evidence` of any accepted passage form."""
    if isinstance(passage, Evidence):
        return passage
    if isinstance(passage, str):
        return Evidence("", "", passage)
    if isinstance(passage, tuple):
        text, doc_id, passage_id, score = passage
        return Evidence(str(doc_id), str(passage_id), text, retrieval_score=float(score))
    return Evidence(
        passage.doc_id,
        passage.passage_id,
        passage.text,
        getattr(passage, "title", ""),
        float(getattr(passage, "retrieval_score", 0.0)),
    )


def standardized(scores: Sequence[float]) -> list[float]:
    """``scores`` minus their mean over their standard deviation; zeros when they are equal."""
    mean = sum(scores) / len(scores)
    spread = math.sqrt(sum((score - mean) ** 2 for score in scores) / len(scores))
    return [(score - mean) / spread if spread > 0 else 0.0 for score in scores]


def cut_question(tokenizer: Tokenizer, question: str, max_length: int) -> tuple[str, int]:
    """The question cut to half of ``max_length`` tokens, and its token count before the cut."""
    budget = max_length // 2
    marks = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    ends = [end for _, end in marks["offset_mapping"]]
    return (question if len(ends) <= budget else question[: ends[budget - 1]]), len(ends)


def encode_windows(
    tokenizer: Tokenizer,
    question: str,
    texts: Sequence[str],
    max_length: int,
    doc_stride: int,
) -> Any:
    """``[CLS] question [SEP] window [SEP]`` for overlapping windows of each text, with
    character offsets and ``overflow_to_sample_mapping``, unpadded.

    Consecutive windows share ``doc_stride`` tokens, or half the room the question leaves
    when that is less (a long question). The question must fit (see :func:`cut_question`).
    """
    question_tokens = len(tokenizer(question, add_special_tokens=False)["input_ids"])
    room = max_length - question_tokens - 3
    return tokenizer(
        [question] * len(texts),
        list(texts),
        truncation="only_second",
        max_length=max_length,
        stride=min(doc_stride, room // 2),
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A span of passage number ``passage``: character offsets into its text, logit sum."""

    passage: int
    start: int
    end: int
    logit: float


class ExtractiveReader:
    """Reads an answer span out of passages with a question-answering model (see the module's
    docstring for the score rule).

    ``model_path`` is a local folder holding a trained reader (``odqa train reader`` writes
    one); odqa ships none. ``max_length`` is the window in tokens (question included, capped
    at the model's limit), ``doc_stride`` the tokens consecutive windows share, ``batch_size``
    the windows per forward pass. ``no_answer_threshold=None`` always answers.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str | None = None,
        precision: str = "auto",
        max_answer_tokens: int = 30,
        doc_stride: int = 128,
        max_length: int = 384,
        n_best: int = 20,
        no_answer_threshold: float | None = None,
        retrieval_weight: float = 1.0,
        batch_size: int = 32,
    ) -> None:
        if min(max_answer_tokens, n_best, batch_size) < 1 or doc_stride < 0:
            raise OdqaError(
                "max_answer_tokens, n_best and batch_size must be at least 1, doc_stride at least 0"
            )
        self.ref: ModelRef = resolve_model(model_path)
        self.device = pick_device(device)
        self.precision = precision
        self.tokenizer, model = load_qa_model(self.ref.path)
        self.model = model.to(self.device).eval()
        limit = getattr(self.model.config, "max_position_embeddings", 512)
        self.max_length = min(max_length, limit)
        if self.max_length < 16:
            raise OdqaError(f"max_length must be at least 16 tokens, got {self.max_length}")
        self.doc_stride = doc_stride
        self.max_answer_tokens = max_answer_tokens
        self.n_best = n_best
        self.no_answer_threshold = no_answer_threshold
        self.retrieval_weight = retrieval_weight
        self.batch_size = batch_size
        self._seen: tuple[str, dict[str, list[tuple[int, int, float]]]] = ("", {})

    def read(self, question: str, passages: Sequence[PassageLike]) -> Answer:
        """The best span for ``question`` across ``passages`` (see the score rule).

        The answer text is ``evidence[0].text[evidence[0].start:evidence[0].end]``. A question
        over half of ``max_length`` tokens is cut there, with a warning.
        """
        readable = readable_evidence(question, passages)
        if not readable:
            return Answer("", 0.0, "none")
        question, tokens = cut_question(self.tokenizer, question.strip(), self.max_length)
        if tokens > self.max_length // 2:
            warnings.warn(
                f"the question has {tokens} tokens; only its first {self.max_length // 2} are "
                f"read (half of max_length {self.max_length})",
                stacklevel=2,
            )
        candidates = self._candidates(question, [item.text for item in readable])
        if not candidates:
            return Answer("", 0.0, "none")
        prior = standardized([item.retrieval_score for item in readable])
        combined = [c.logit + self.retrieval_weight * prior[c.passage] for c in candidates]
        best = min(
            range(len(candidates)),
            key=lambda i: (-combined[i], candidates[i].passage, candidates[i].start),
        )
        score = torch.softmax(torch.tensor(combined, dtype=torch.float64), dim=0)[best].item()
        if self.no_answer_threshold is not None and score < self.no_answer_threshold:
            return Answer("", score, "none")
        chosen = candidates[best]
        source = readable[chosen.passage]
        cited = Evidence(
            source.doc_id,
            source.passage_id,
            source.text,
            source.title,
            source.retrieval_score,
            chosen.start,
            chosen.end,
        )
        return Answer(source.text[chosen.start : chosen.end], score, "span", (cited,))

    def _candidates(self, question: str, texts: list[str]) -> list[_Candidate]:
        """Candidate spans of every window of every text, the best logit per distinct span.

        A text already read for the same question (the previous call's, as ``eval-qa`` asks
        for the top 1, then the top 3, ...) is not read again."""
        if self._seen[0] != question:
            self._seen = (question, {})
        known = self._seen[1]
        fresh = list(dict.fromkeys(text for text in texts if text not in known))
        if fresh:
            known.update(zip(fresh, self._read_texts(question, fresh), strict=True))
        return [
            _Candidate(passage, start, end, logit)
            for passage, text in enumerate(texts)
            for start, end, logit in known[text]
        ]

    def _read_texts(self, question: str, texts: list[str]) -> list[list[tuple[int, int, float]]]:
        """``(start, end, logit)`` of each distinct candidate span of each text."""
        windows = encode_windows(self.tokenizer, question, texts, self.max_length, self.doc_stride)
        start_logits, end_logits = self._logits(windows)
        best: list[dict[tuple[int, int], float]] = [{} for _ in texts]
        for window, passage in enumerate(windows["overflow_to_sample_mapping"]):
            context = torch.tensor([sid == 1 for sid in windows.sequence_ids(window)])
            marks = windows["offset_mapping"][window]
            spans = self._spans(start_logits[window], end_logits[window], context)
            for start, end, logit in spans:
                key = (marks[start][0], marks[end][1])
                if logit > best[passage].get(key, -math.inf):
                    best[passage][key] = logit
        return [[(*key, logit) for key, logit in found.items()] for found in best]

    def _spans(
        self, starts: torch.Tensor, ends: torch.Tensor, context: torch.Tensor
    ) -> Iterator[tuple[int, int, float]]:
        """``(start, end, start_logit + end_logit)`` of the valid n-best pairs of one window."""
        size = int(context.sum())
        if size == 0:
            return
        floor = torch.finfo(starts.dtype).min
        starts = starts.masked_fill(~context, floor)
        ends = ends.masked_fill(~context, floor)
        top = min(self.n_best, size)
        start_values, start_index = starts.topk(top)
        end_values, end_index = ends.topk(top)
        length = end_index[None, :] - start_index[:, None] + 1
        valid = (length >= 1) & (length <= self.max_answer_tokens)
        sums = start_values[:, None] + end_values[None, :]
        for row, column in valid.nonzero().tolist():
            yield start_index[row].item(), end_index[column].item(), sums[row, column].item()

    @torch.inference_mode()
    def _logits(self, windows: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Start and end logits of every window (each its own length), float32 on the CPU.

        Windows are batched by length, longest first, and each batch is padded only to its
        longest (:func:`~odqa.models.batching.length_batches`)."""
        names = [name for name in self.tokenizer.model_input_names if name in windows]
        lengths = [len(ids) for ids in windows["input_ids"]]
        starts: list[torch.Tensor] = [torch.empty(0)] * len(lengths)
        ends: list[torch.Tensor] = [torch.empty(0)] * len(lengths)
        for rows in length_batches(lengths, self.batch_size):
            features = [{name: windows[name][row] for name in names} for row in rows]
            batch = self.tokenizer.pad(features, return_tensors="pt").to(self.device)
            with autocast_context(self.device, self.precision):
                output = self.model(**batch)
            for at, row in enumerate(rows):
                starts[row] = output.start_logits[at, : lengths[row]].float().cpu()
                ends[row] = output.end_logits[at, : lengths[row]].float().cpu()
        return starts, ends
