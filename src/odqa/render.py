"""How hits, answers and metrics are shown: JSON-ready dicts and the text lines of the CLI.

One rule for numbers everywhere (the CLI's ``--json`` and the HTTP service alike): JSON has
no NaN or infinity, so a score that is not a finite number is ``null``. One rule for machine
output: every ``--json`` of the CLI prints JSON Lines — one compact JSON value a line (a hit a
line for ``search``; one object for ``ask``, ``eval``, ``info``, ...), what ``jq -c`` and
pipes expect.

>>> from odqa import Answer, Evidence
>>> source = Evidence("d1", "d1#0", "Scurvy is caused by a lack of vitamin C.", start=30, end=39)
>>> answer = Answer("vitamin C", float("nan"), "span", (source,))
>>> answer_dict(answer)["score"] is None
True
>>> to_json({"score": finite(float("inf")), "text": "größer"})
'{"score": null, "text": "größer"}'
>>> print("\\n".join(answer_lines(answer)))
answer: vitamin C
score:  nan
source: d1#0
        Scurvy is caused by a lack of vitamin C.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from odqa.errors import OdqaError
from odqa.read.answer import Answer, Evidence
from odqa.retrieve.hit import Hit

WIDTH = 240
"""Characters of passage text a line shows."""


def finite(value: float | None) -> float | None:
    """``value`` as a float, or ``None`` when it is missing, NaN or infinite."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def to_json(value: Any) -> str:
    """One line of JSON (a JSON Lines record), non-ASCII kept; refuses NaN (use the
    ``*_dict`` functions first)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def hit_dict(hit: Hit) -> dict[str, Any]:
    """A hit with its passage: rank, score, doc and passage ids, title, text, offsets."""
    passage = hit.passage
    if passage is None:
        raise OdqaError(f"hit {hit.passage_id} carries no text; search with with_text=True")
    return {
        "rank": hit.rank,
        "score": finite(hit.score),
        "doc_id": hit.doc_id,
        "passage_id": hit.passage_id,
        "title": passage.title,
        "text": passage.text,
        "start": passage.start,
        "end": passage.end,
    }


def evidence_dict(item: Evidence) -> dict[str, Any]:
    """An evidence passage: ids, title, text, retrieval score, answer span, citation."""
    return {
        "doc_id": item.doc_id,
        "passage_id": item.passage_id,
        "text": item.text,
        "title": item.title,
        "retrieval_score": finite(item.retrieval_score),
        "start": item.start,
        "end": item.end,
        "citation": item.citation,
    }


def answer_dict(answer: Answer, question: str | None = None) -> dict[str, Any]:
    """An answer (``text``, ``score``, ``kind``, ``evidence``), after its ``question`` if given."""
    record: dict[str, Any] = {} if question is None else {"question": question}
    record.update(
        text=answer.text,
        score=finite(answer.score),
        kind=answer.kind,
        evidence=[evidence_dict(item) for item in answer.evidence],
    )
    return record


def shorten(text: str, width: int = WIDTH) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def snippet(text: str, start: int, end: int, width: int = WIDTH) -> str:
    """About ``width`` characters of ``text`` around ``text[start:end]``, on one line."""
    left = max(0, start - (width - (end - start)) // 2)
    right = min(len(text), left + width)
    left = max(0, right - width)
    piece = " ".join(text[left:right].split())
    return ("…" if left else "") + piece + ("…" if right < len(text) else "")


def hit_lines(hits: Sequence[Hit]) -> list[str]:
    """Each hit as ``rank. score  doc id — title`` and the start of its text."""
    if not hits:
        return ["no hits"]
    lines = []
    for hit in hits:
        passage = hit.passage
        title = f" — {passage.title}" if passage is not None and passage.title else ""
        lines.append(f"{hit.rank:>3}. {hit.score:.4f}  {hit.doc_id}{title}")
        if passage is not None:
            lines.append(f"     {shorten(passage.text)}")
    return lines


def answer_lines(answer: Answer) -> list[str]:
    """The answer and its score, then its sources: for a span, each passage with the answer
    in view; for a generated answer, each cited passage as ``[n] doc id — title`` (or the
    passages read when it cites none)."""
    if answer.kind == "none":
        return [f"no answer (best probability {answer.score:.4f})"]
    label = "answer (best sentence)" if answer.kind == "sentence" else "answer"
    lines = [f"{label}: {answer.text}", f"score:  {answer.score:.4f}"]
    if answer.kind == "generated":
        if answer.evidence and answer.evidence[0].citation is None:
            lines.append("no citation; passages read:")
        for item in answer.evidence:
            mark = "-" if item.citation is None else f"[{item.citation}]"
            lines.append(f"{mark} {item.doc_id}{_title(item)}")
            lines.append(f"    {snippet(item.text, 0, 0)}")
        return lines
    for item in answer.evidence:
        lines.append(f"source: {item.passage_id}{_title(item)}")
        lines.append(f"        {snippet(item.text, item.start or 0, item.end or 0)}")
    return lines


def _title(item: Evidence) -> str:
    return f" — {item.title}" if item.title else ""


def metrics_lines(metrics: Mapping[str, float | int]) -> list[str]:
    """One ``name  value`` line per metric, names right-aligned, floats to four decimals."""
    return [
        f"{key:>24}  {value:.4f}" if isinstance(value, float) else f"{key:>24}  {value}"
        for key, value in metrics.items()
    ]


def qa_metrics_lines(metrics: Mapping[str, float | int], ks: Iterable[int]) -> list[str]:
    """The table of ``odqa eval-qa``: EM, F1 and retrieval accuracy at each k, then counts."""
    lines = [f"{'top-k':>6}  {'EM':>6}  {'F1':>6}  retrieval accuracy"]
    for k in sorted(set(ks)):
        em, f1, found = (metrics[f"{name}@{k}"] for name in ("em", "f1", "retrieval_accuracy"))
        lines.append(f"{k:>6}  {em:6.2f}  {f1:6.2f}  {found:6.2f}")
    skipped = metrics["questions_without_answers"]
    note = f"; {skipped} without gold answers skipped" if skipped else ""
    lines.append(f"percent of {metrics['questions']} questions{note}")
    return lines
