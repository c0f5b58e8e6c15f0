"""The unit of retriever training: a query with the texts it is trained against."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TrainingExample:
    """One query and its texts, as every training data format is read into.

    ``texts[0]`` is the positive; ``texts[1:]`` are hard negatives (possibly none, then only the
    other examples in a batch serve as negatives). ``scores``, when given, are a teacher's
    scores for every text (distillation; then ``texts[0]`` needs not be the best one).
    ``origin`` says where the example came from (``file:line``) for error messages.
    """

    query: str
    texts: tuple[str, ...]
    scores: tuple[float, ...] | None = None
    origin: str = ""

    @property
    def positive(self) -> str:
        return self.texts[0]

    @property
    def negatives(self) -> tuple[str, ...]:
        return self.texts[1:]
