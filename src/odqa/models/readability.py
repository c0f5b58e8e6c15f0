"""Whether a WordPiece encoder can read a collection, from how its tokenizer cuts a sample.

A model reads text its vocabulary was built for in whole words and a few pieces: the
embedded MiniLM (English) cuts English into 0.27 wordpieces a letter (SciFact, SQuAD),
German and French into 0.37-0.39. Text of a script it was not trained on falls apart into
single characters or jamo, or ``[UNK]``: Korean (KorQuAD) 1.89 pieces a letter and 4.2 %
``[UNK]``; Russian, Arabic and Japanese about 1.0. Dense MiniLM on that Korean set ranks
near random (nDCG@10 0.05 against BM25's 0.95). The rule below sits between the two groups.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from odqa.corpus.sample import spread_sample

UNK_RATE_MAX = 0.01
PIECES_PER_LETTER_MAX = 0.6
SAMPLE_TEXTS = 200
SAMPLE_CHARS = 2000
"""Texts measured (spread over those given), and the characters read of each."""
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class Readability:
    """What the tokenizer made of a sample; ``readable`` is False where either figure is over
    its limit (``[UNK]`` over 1 % of pieces, or over 0.6 pieces a letter)."""

    readable: bool
    unk_rate: float
    pieces_per_letter: float
    texts: int
    letters: int

    def record(self) -> dict[str, Any]:
        """What the manifest keeps (figures rounded to 4 places)."""
        data = asdict(self)
        data["unk_rate"] = round(self.unk_rate, 4)
        data["pieces_per_letter"] = round(self.pieces_per_letter, 4)
        return data

    def describe(self) -> str:
        """The figures in words."""
        return (
            f"{self.unk_rate:.1%} [UNK] wordpieces, {self.pieces_per_letter:.2f} wordpieces a "
            f"letter over {self.texts} sampled passages (readable: at most "
            f"{UNK_RATE_MAX:.0%} and {PIECES_PER_LETTER_MAX})"
        )


def measure(tokenizer: Any, texts: Sequence[str]) -> Readability:
    """Cut a spread sample of ``texts`` with a Hugging Face WordPiece ``tokenizer`` and judge.

    With no letters in the sample (numbers, symbols) there is nothing to judge: readable.
    """
    sample = spread_sample(texts, SAMPLE_TEXTS, SAMPLE_CHARS)
    unknown = tokenizer.unk_token_id
    pieces = unk = 0
    cut = tokenizer(sample, add_special_tokens=False, verbose=False)["input_ids"] if sample else []
    for ids in cut:
        pieces += len(ids)
        unk += sum(1 for token in ids if token == unknown)
    letters = sum(len(_LETTER.findall(text)) for text in sample)
    unk_rate = unk / pieces if pieces else 0.0
    per_letter = pieces / letters if letters else 0.0
    readable = unk_rate <= UNK_RATE_MAX and per_letter <= PIECES_PER_LETTER_MAX
    return Readability(readable, unk_rate, per_letter, len(sample), letters)
