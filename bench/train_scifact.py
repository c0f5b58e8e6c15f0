"""Train a retriever on SciFact's train split with mined hard negatives; nDCG@10 on test.

1. SciFact train queries (with ``qrels/train.tsv``) split by a seeded shuffle into train and a
   10% dev set; test queries are never seen.
2. Hard negatives mined with the BM25+dense hybrid index of SciFact (built by
   ``bench/retrieval_scifact.py``) at ranks 10-100, timed.
3. A dev set for training-time evaluation: the dev queries against their relevant documents
   plus the hybrid top-10 of each.
4. Training (``odqa.train.train_retriever``), then a full SciFact index with the trained model
   (chunked as every odqa index is) and nDCG@10 on the test queries through odqa's Searcher.

Run:  .venv/bin/python bench/train_scifact.py colbert --epochs 5 --precision bf16
      .venv/bin/python bench/train_scifact.py dense --epochs 4 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict

from common import DATA, WORK, peak_rss_mb, report
from odqa.corpus import read_qrels, read_queries
from odqa.evaluate import evaluate_run
from odqa.evaluate.retrieval import evaluate_index, run_queries
from odqa.index import build_index
from odqa.retrieve import Searcher
from odqa.train.dev import DevSet
from odqa.train.examples import TrainingExample
from odqa.train.mining import mine_negatives
from odqa.train.run import train_retriever
from odqa.train.trainer import TrainConfig

SCIFACT = DATA / "beir-scifact"
MINER = WORK / "scifact"  # BM25 + dense, from bench/retrieval_scifact.py
DEV_FRACTION = 0.1


def split_train(seed: int) -> tuple[list, list, dict]:
    qrels = read_qrels(SCIFACT / "qrels" / "train.tsv")
    queries = [query for query in read_queries(SCIFACT) if query.id in qrels]
    random.Random(seed).shuffle(queries)
    cut = int(len(queries) * DEV_FRACTION)
    return queries[cut:], queries[:cut], qrels


def write_dev(searcher: Searcher, dev: list, qrels: dict, folder) -> DevSet:
    """Dev queries, their judgements, and a corpus of their relevant docs + hybrid top-10."""
    folder.mkdir(parents=True, exist_ok=True)
    run = run_queries(searcher, dev, k=10)
    wanted = {doc for query in dev for doc in qrels[query.id]} | {
        doc for docs in run.values() for doc in docs
    }
    collection = searcher.collection
    number = {doc_id: i for i, doc_id in enumerate(collection.doc_ids)}
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for doc_id in sorted(wanted):
            document = collection.document(number[doc_id])
            record = {"id": doc_id, "title": document.title, "text": document.text}
            out.write(json.dumps(record) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as out:
        for query in dev:
            out.write(json.dumps({"id": query.id, "text": query.text}) + "\n")
    with (folder / "qrels.tsv").open("w", encoding="utf-8") as out:
        for query in dev:
            for doc_id, relevance in qrels[query.id].items():
                out.write(f"{query.id}\t0\t{doc_id}\t{relevance}\n")
    return DevSet(folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels.tsv")


def test_figures(kind: str, model) -> dict:
    """nDCG@10 etc. on SciFact test through a full odqa index built with ``model``."""
    target = WORK / f"scifact-{kind}-trained"
    options = {"colbert_model": str(model)} if kind == "colbert" else {"model": str(model)}
    started = time.perf_counter()
    build_index(SCIFACT, target, retrievers=[kind], overwrite=True, show_progress=True, **options)
    built = time.perf_counter() - started
    qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
    queries = read_queries(SCIFACT)
    searcher = Searcher(target)
    figures = {"index_build_s": round(built, 1), "test": evaluate_index(searcher, queries, qrels)}
    if kind == "colbert":
        judged = [query for query in queries if query.id in qrels]
        searcher_exact = Searcher(target, exhaustive=True)
        run = run_queries(searcher_exact, judged, retriever="colbert")
        figures["test_exhaustive"] = evaluate_run(run, qrels)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["colbert", "dense"])
    parser.add_argument("--epochs", type=float, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--head-lr", type=float, default=3e-4)
    parser.add_argument("--negatives", type=int, default=3)
    parser.add_argument("--ranks", default="10-100")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--doc-maxlen", type=int, default=180)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-test", action="store_true", help="skip the test index (smoke run)")
    args = parser.parse_args()

    train, dev, qrels = split_train(args.seed)
    miner = Searcher(MINER)
    first, last = (int(part) for part in args.ranks.split("-"))
    started = time.perf_counter()
    mined, stats = mine_negatives(
        miner, train, qrels, ranks=(first, last), per_query=args.negatives, seed=args.seed
    )
    mining_s = time.perf_counter() - started
    examples = [
        TrainingExample(m.query, (m.positive, *m.negatives), origin=m.query_id) for m in mined
    ]
    dev_set = write_dev(miner, dev, qrels, WORK / "scifact-train-dev")
    out = WORK / f"{args.kind}-scifact-trained"
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        head_learning_rate=args.head_lr,
        save_every=20,
        seed=args.seed,
    )
    summary = train_retriever(
        args.kind,
        examples,
        out,
        config=config,
        dev=dev_set,
        precision=args.precision,
        doc_maxlen=args.doc_maxlen,
        overwrite=True,
        show_progress=True,
    )
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    figures = {
        "kind": args.kind,
        "train_queries": len(train),
        "dev_queries": len(dev),
        "dev_corpus": len(dev_set.doc_ids),
        "mining": {"seconds": round(mining_s, 1), **asdict(stats), "ranks": args.ranks},
        "training": {k: v for k, v in summary.items() if k != "config"},
        "config": summary["config"],
        "dev_curve": [(entry["step"], entry["dev"]["ndcg@10"]) for entry in log if "dev" in entry],
    }
    if not args.no_test:
        figures.update(test_figures(args.kind, out))
    figures["peak_rss_mb"] = round(peak_rss_mb())
    report(f"train_{args.kind}_scifact", figures)


if __name__ == "__main__":
    main()
