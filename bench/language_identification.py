"""Which language identifier odqa uses: py3langid against lingua, on short and long texts.

Texts: the questions (short) and paragraphs (long) of each native-language SQuAD-format set
listed in bench/results/cache/multilingual/INDEX.json (see that folder's SOURCE.md files),
with SQuAD v1.1 dev and SciFact for English. For each identifier and language: accuracy of
the label of each text (close varieties counted as the language: nn/nb -> no, ms -> id,
wuu/yue -> zh), and the identifier's time per text; and the collection's label as odqa gives
it (:func:`odqa.index.identify.identify_collection`, py3langid) on the paragraphs.

Run: PYTHONPATH=src .venv/bin/python bench/language_identification.py [--texts 200]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from common import DATA, RESULTS, report
from odqa.index.identify import FAMILY, identify_collection

MULTILINGUAL = RESULTS / "cache" / "multilingual"


def squad_texts(path: Path, count: int) -> tuple[list[str], list[str]]:
    """An even sample of ``count`` questions and ``count`` paragraphs of a SQuAD file."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    paragraphs = [p for article in data for p in article["paragraphs"]]
    questions = [qa["question"] for p in paragraphs for qa in p["qas"]]
    contexts = [p["context"] for p in paragraphs]

    def spread(items: list[str]) -> list[str]:
        return items[:: max(1, len(items) // count)][:count]

    return spread(questions), spread(contexts)


def sets() -> list[tuple[str, Path]]:
    """(language, file) of each set: one a language, the first listed."""
    listed = json.loads((MULTILINGUAL / "INDEX.json").read_text(encoding="utf-8"))
    chosen: dict[str, Path] = {"en": DATA / "squad-v1.1" / "dev-v1.1.json"}
    for entry in listed:
        chosen.setdefault(entry["language"], MULTILINGUAL / entry["file"])
    korquad = RESULTS / "cache" / "korquad" / "KorQuAD_v1.0_dev.json"
    if korquad.exists():
        chosen.setdefault("ko", korquad)
    return sorted(chosen.items())


def py3langid() -> Callable[[str], str]:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return lambda text: identifier.classify(text)[0]


def lingua() -> Callable[[str], str]:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().build()

    def label(text: str) -> str:
        found = detector.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found is not None else "none"

    return label


def accuracy(label: Callable[[str], str], texts: list[str], language: str) -> tuple[float, float]:
    """Share of ``texts`` labelled ``language`` and milliseconds a text."""
    started = time.perf_counter()
    right = sum(FAMILY.get(code, code) == language for code in map(label, texts))
    milliseconds = 1000 * (time.perf_counter() - started) / len(texts)
    return round(right / len(texts), 4), round(milliseconds, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=200, help="questions and paragraphs a set")
    args = parser.parse_args()
    figures: dict = {"load_at_start": os.getloadavg(), "languages": {}}
    loading = {}
    identifiers = {}
    for name, make in (("py3langid", py3langid), ("lingua", lingua)):
        started = time.perf_counter()
        identifiers[name] = make()
        identifiers[name]("warm up")
        loading[name] = round(time.perf_counter() - started, 2)
    figures["load_seconds"] = loading
    for language, path in sets():
        questions, paragraphs = squad_texts(path, args.texts)
        row: dict = {"set": path.name, "collection": identify_collection(paragraphs).record()}
        for name, label in identifiers.items():
            q_acc, q_ms = accuracy(label, questions, language)
            p_acc, p_ms = accuracy(label, paragraphs, language)
            row[name] = {
                "questions": q_acc, "paragraphs": p_acc, "ms_question": q_ms, "ms_paragraph": p_ms,
            }  # fmt: skip
        figures["languages"][language] = row
        print(language, json.dumps(row, ensure_ascii=False), flush=True)
    for name in identifiers:
        rows = [row[name] for row in figures["languages"].values()]
        figures[f"{name}_mean"] = {
            key: round(sum(row[key] for row in rows) / len(rows), 4) for key in rows[0]
        }
    figures["load_at_end"] = os.getloadavg()
    report("language_identification", figures)


if __name__ == "__main__":
    main()
