"""The generative reader's prompt (numbered passages) and the ``[n]`` citations of its answer.

The question comes before the passages, so that a backend cutting an overlong prompt from its
end (see :class:`odqa.read.backends.LocalCausalLM`) cuts the last passages, never the question.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

from odqa.read.answer import Evidence

Message = dict[str, str]
"""A chat message: ``{"role": "system" | "user" | "assistant", "content": text}``."""

SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages the user gives you. "
    "Cite the passages that support your answer by their numbers in square brackets, "
    "like [1] or [1][3]. If the passages do not contain the answer, say that you don't know. "
    "Keep the answer short."
)

_BRACKETS = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")


def build_prompt(question: str, passages: Sequence[Evidence]) -> list[Message]:
    """Chat messages asking ``question`` of ``passages``, numbered ``[1]`` to ``[k]`` in order,
    each with its title on the line of its number."""
    blocks = []
    for number, passage in enumerate(passages, start=1):
        head = f"[{number}] {passage.title}".rstrip()
        blocks.append(f"{head}\n{passage.text.strip()}")
    user = f"Question: {question.strip()}\n\nPassages:\n\n" + "\n\n".join(blocks)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def parse_citations(text: str, count: int) -> list[int]:
    """The passage numbers ``text`` cites, each once, in order of first citation.

    Reads ``[2]``, ``[1, 3]`` (also ``;``) and ``[1][3]``. Numbers outside ``1..count`` are
    dropped, with a warning that counts them.
    """
    cited: list[int] = []
    dropped: list[int] = []
    for group in _BRACKETS.findall(text):
        for number in map(int, re.split(r"[,;]", group)):
            if not 1 <= number <= count:
                dropped.append(number)
            elif number not in cited:
                cited.append(number)
    if dropped:
        listed = ", ".join(f"[{number}]" for number in dropped)
        warnings.warn(
            f"{len(dropped)} citation(s) outside the {count} passages given were dropped: {listed}",
            stacklevel=2,
        )
    return cited
