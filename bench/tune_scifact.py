"""``odqa tune`` on BEIR SciFact: tuned on half of the train queries, scored on the test queries.

The index (BM25 + dense with the embedded MiniLM) is built once into bench/results/cache/
(git-ignored). The train queries with judgements are split in two by a seeded shuffle: the
study sees only the dev half; the other half and the test queries (qrels/test.tsv) are held
out. Printed and kept: nDCG@10 of the default settings and the tuned ones on each set, the
time per trial (the first searches, the rest replay) beside the time of one search of the
dev set, and the settings found.

    PYTHONPATH=src .venv/bin/python bench/tune_scifact.py --trials 50
"""

from __future__ import annotations

import argparse
import random
import time

from common import DATA, RESULTS, report
from odqa.corpus import read_qrels, read_queries
from odqa.evaluate.retrieval import evaluate_index, judged_queries
from odqa.index import build_index
from odqa.plots import plot_history
from odqa.retrieve import Searcher
from odqa.tune.run import DevSet, judgements_of, tune
from odqa.tune.settings_file import applied, check_disjoint, write_settings

SCIFACT = DATA / "beir-scifact"
CACHE = RESULTS / "cache" / "scifact-bm25-dense"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dev-share", type=float, default=0.5, help="train queries tuned on")
    args = parser.parse_args()
    figures: dict = {"trials": args.trials, "seed": args.seed, "index": "bm25+dense (MiniLM)"}
    if not CACHE.exists():
        started = time.perf_counter()
        build_index(SCIFACT, CACHE, retrievers=["bm25", "dense"], show_progress=True)
        figures["build_s"] = round(time.perf_counter() - started, 1)
    queries = read_queries(SCIFACT)
    train_qrels = read_qrels(SCIFACT / "qrels" / "train.tsv")
    test_qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
    train = judged_queries(queries, train_qrels)
    random.Random(args.seed).shuffle(train)
    cut = round(len(train) * args.dev_share)
    dev, rest = train[:cut], train[cut:]
    test = judged_queries(queries, test_qrels)
    dev_qrels, rest_qrels = judgements_of(dev, train_qrels), judgements_of(rest, train_qrels)

    started = time.perf_counter()
    with Searcher(CACHE) as searcher:
        default_dev = evaluate_index(searcher, dev, dev_qrels)["ndcg@10"]
    figures["search_dev_set_s"] = round(time.perf_counter() - started, 2)

    settings, result = tune(
        CACHE, DevSet(dev, dev_qrels, "train split"), trials=args.trials, seed=args.seed,
        show_progress=True,
    )  # fmt: skip
    check_disjoint(settings, [query.id for query in test], "qrels/test.tsv")
    check_disjoint(settings, [query.id for query in rest], "the other train half")
    write_settings(RESULTS / "tune_scifact_settings.json", settings)
    plot_history(result.values, RESULTS / "tune_scifact_history.png", "nDCG@10")

    scores = {}
    for name, options in (("default", None), ("tuned", applied(settings))):
        with Searcher(CACHE, options) as searcher:
            scores[name] = {
                "test": evaluate_index(searcher, test, test_qrels)["ndcg@10"],
                "train_rest": evaluate_index(searcher, rest, rest_qrels)["ndcg@10"],
            }
    figures.update(
        queries={"dev": len(dev), "train_rest": len(rest), "test": len(test)},
        ndcg10={
            "dev": {"default": result.default_value, "tuned": result.best_value},
            "train_rest": {k: scores[k]["train_rest"] for k in scores},
            "test": {k: scores[k]["test"] for k in scores},
        },
        default_dev_check=default_dev,
        first_trial_s=round(result.first_trial_s, 2),
        trial_s=round(result.trial_s, 3),
        settings=settings.search,
        params=result.best_params,
        values=[round(value, 5) for value in result.values],
    )
    report("tune_scifact", figures)


if __name__ == "__main__":
    main()
