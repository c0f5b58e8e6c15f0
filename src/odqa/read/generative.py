"""Generative reader: an answer written from numbered passages, citing them as ``[n]``.

The prompt (:func:`~odqa.read.prompt.build_prompt`) numbers the passages ``[1]`` to ``[k]``
and asks for an answer from them alone, with citations, or "don't know". A backend writes the
answer: :class:`~odqa.read.backends.LocalCausalLM` (a local transformers folder) or
:class:`~odqa.read.openai_api.OpenAICompatible` (an HTTP endpoint).

**Evidence.** The cited passages, in order of first citation, each with ``citation=n``;
citations outside ``1..k`` are dropped with a warning. An answer citing nothing keeps all the
passages as evidence, with ``citation=None``.

**Score.** ``exp`` of the mean log-probability of the generated tokens (their geometric-mean
probability, in (0, 1]) when the backend gives log-probabilities (the local model does); NaN
when it does not (HTTP endpoints). It measures the model's confidence in its wording, not
whether the answer is right.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from odqa.errors import OdqaError
from odqa.read.answer import Answer
from odqa.read.backends import Backend, Generation, LocalCausalLM
from odqa.read.extractive import PassageLike, as_evidence
from odqa.read.openai_api import OpenAICompatible
from odqa.read.prompt import build_prompt, parse_citations

__all__ = [
    "Backend",
    "Generation",
    "GenerativeReader",
    "LocalCausalLM",
    "OpenAICompatible",
    "build_prompt",
    "parse_citations",
]


class GenerativeReader:
    """Answers from passages with ``backend`` (see the module's docstring for evidence and
    score). ``temperature`` 0 is greedy, reproducible decoding."""

    def __init__(
        self, backend: Backend, *, max_new_tokens: int = 256, temperature: float = 0.0
    ) -> None:
        if max_new_tokens < 1 or temperature < 0:
            raise OdqaError("max_new_tokens must be at least 1 and temperature not negative")
        self.backend = backend
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature

    def read(self, question: str, passages: Sequence[PassageLike]) -> Answer:
        """The generated answer to ``question`` from ``passages`` (``kind="generated"``), or
        ``kind="none"`` when there is no passage to read or the backend writes nothing."""
        if not question.strip():
            raise OdqaError("empty question")
        evidence = [item for item in map(as_evidence, passages) if item.text.strip()]
        if not evidence:
            return Answer("", 0.0, "none")
        messages = build_prompt(question, evidence)
        generation = self.backend.generate(messages, self.max_new_tokens, self.temperature)
        score = math.nan if generation.logprob is None else math.exp(generation.logprob)
        text = generation.text.strip()
        if not text:
            return Answer("", score, "none")
        cited = parse_citations(text, len(evidence))
        if not cited:
            return Answer(text, score, "generated", tuple(evidence))
        sources = tuple(dataclasses.replace(evidence[n - 1], citation=n) for n in cited)
        return Answer(text, score, "generated", sources)
