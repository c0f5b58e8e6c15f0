"""Rebuild examples/squad-sample from SQuAD v1.1 dev (../shared/data/squad-v1.1).

``train.json`` holds the articles the demo's reader is trained on; ``questions.json`` holds
other articles, whose paragraphs the demo indexes and whose questions it asks, so the reader
is asked only about text it was not trained on. Run: python examples/make_squad_sample.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[1] / "shared" / "data" / "squad-v1.1" / "dev-v1.1.json"
OUT = HERE / "squad-sample"
TRAIN_ARTICLES = ("Super_Bowl_50", "Warsaw", "Nikola_Tesla", "Martin_Luther")
QUESTION_ARTICLES = ("Prime_number", "Force")


def subset(data: dict, titles: tuple[str, ...]) -> dict:
    """The SQuAD file cut to the named articles, in that order."""
    by_title = {article["title"]: article for article in data["data"]}
    return {"version": data["version"], "data": [by_title[title] for title in titles]}


def main() -> None:
    data = json.loads(SOURCE.read_text(encoding="utf-8"))
    OUT.mkdir(exist_ok=True)
    for name, titles in (("train.json", TRAIN_ARTICLES), ("questions.json", QUESTION_ARTICLES)):
        text = json.dumps(subset(data, titles), ensure_ascii=False)
        (OUT / name).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
