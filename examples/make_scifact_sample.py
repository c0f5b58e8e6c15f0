"""Rebuild examples/scifact-sample from BEIR SciFact (../shared/data/beir-scifact).

The sample keeps 30 test claims, every abstract they cite, and 370 other abstracts chosen by a
fixed seed. Run: python examples/make_scifact_sample.py
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parents[1] / "shared" / "data" / "beir-scifact"
OUT = HERE / "scifact-sample"
QUERIES, OTHER_DOCS, SEED = 30, 370, 13


def main() -> None:
    with (SOURCE / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))[1:]
    query_ids = sorted({row[0] for row in rows}, key=int)
    chosen = set(random.Random(SEED).sample(query_ids, QUERIES))
    qrels = [row for row in rows if row[0] in chosen]
    cited = {row[1] for row in qrels}
    with gzip.open(SOURCE / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        corpus = [json.loads(line) for line in handle]
    others = [doc["_id"] for doc in corpus if doc["_id"] not in cited]
    keep = cited | set(random.Random(SEED).sample(others, OTHER_DOCS))
    OUT.mkdir(exist_ok=True)
    with (OUT / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for doc in corpus:
            if doc["_id"] in keep:
                record = {"id": doc["_id"], "title": doc["title"], "text": doc["text"]}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    with (
        (SOURCE / "queries.jsonl").open(encoding="utf-8") as source,
        (OUT / "queries.jsonl").open("w", encoding="utf-8") as handle,
    ):
        for line in source:
            query = json.loads(line)
            if query["_id"] in chosen:
                handle.write(json.dumps({"id": query["_id"], "text": query["text"]}) + "\n")
    with (OUT / "qrels.tsv").open("w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for query_id, doc_id, score in sorted(qrels, key=lambda r: (int(r[0]), int(r[1]))):
            handle.write(f"{query_id}\t{doc_id}\t{score}\n")


if __name__ == "__main__":
    main()
