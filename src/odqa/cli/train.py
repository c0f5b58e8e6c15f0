"""``odqa`` commands for training data: ``mine`` (hard negatives)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from odqa.cli.options import Device, Precision, parse_articles
from odqa.errors import OdqaError

if TYPE_CHECKING:
    from odqa.train.mining import MiningStats
    from odqa.train.trainer import TrainConfig

TEMPORARY_MINERS = ("bm25", "dense")
MINE_EPILOG = (
    "Example: odqa mine corpus.jsonl --queries queries.jsonl --qrels qrels/train.tsv "
    "--out train.jsonl --miner bm25 --ranks 10-100 --per-query 4"
)


def parse_ranks(value: str) -> tuple[int, int]:
    """``"10-100"`` -> ``(10, 100)``."""
    first, _, last = value.partition("-")
    if not (first.strip().isdigit() and last.strip().isdigit()):
        raise OdqaError(f"--ranks must be FIRST-LAST, e.g. 10-100; got {value!r}")
    return int(first), int(last)


def mine(
    corpus: Annotated[
        Path,
        typer.Argument(help="The documents: JSONL, CSV/TSV, BEIR folder, SQuAD or BioASQ JSON."),
    ],
    queries: Annotated[Path, typer.Option(help="Queries: JSONL, TSV, BEIR, SQuAD, BioASQ.")],
    qrels: Annotated[Path, typer.Option(help="Judgements: TREC or BEIR TSV, SQuAD, BioASQ.")],
    out: Annotated[Path, typer.Option(help="Where the training JSONL goes.")],
    miner: Annotated[
        str,
        typer.Option(
            help="bm25 or dense (search a temporary index of CORPUS), or an index directory "
            "(searched as it is; texts come from its own copy of the documents)."
        ),
    ] = "bm25",
    retriever: Annotated[
        str | None,
        typer.Option("--retriever", "-r", help="Retriever of the index (default: its default)."),
    ] = None,
    ranks: Annotated[
        str, typer.Option(help="Ranks the negatives are drawn from, 1-based, inclusive.")
    ] = "10-100",
    per_query: Annotated[int, typer.Option(help="Negatives drawn per query.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the draw: the same seed, the same file.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Mine hard negatives: high-ranked documents not judged relevant to the query.

    Writes one JSONL line per (query, relevant document), ready for odqa train.
    """
    from odqa.cli.errors import user_errors
    from odqa.corpus import read_qrels, read_queries
    from odqa.evaluate.retrieval import judged_queries
    from odqa.retrieve import Searcher
    from odqa.train.mining import check_settings, mine_negatives, write_mined

    with user_errors():
        started = time.perf_counter()
        if out.exists() and not overwrite:
            raise OdqaError(f"{out} already exists; pass --overwrite to replace it")
        window = parse_ranks(ranks)
        check_settings(window, per_query)
        query_list = read_queries(queries)
        judgements = read_qrels(qrels)
        judged_queries(query_list, judgements, str(queries), str(qrels))
        with tempfile.TemporaryDirectory(prefix="odqa-mine-") as scratch:
            searcher = Searcher(miner_index(miner, corpus, Path(scratch)))
            examples, stats = mine_negatives(
                searcher,
                query_list,
                judgements,
                ranks=window,
                per_query=per_query,
                seed=seed,
                retriever=retriever,
                show_progress=True,
            )
            searcher.collection.close()
        write_mined(out, examples)
        typer.echo(f"{summary(stats, per_query)}, {time.perf_counter() - started:.1f}s -> {out}")


def miner_index(miner: str, corpus: Path, scratch: Path) -> Path:
    """The index to mine with: a new one of ``corpus`` in ``scratch``, or the one given."""
    from odqa.index import Manifest, build_index

    if miner in TEMPORARY_MINERS:
        return build_index(corpus, scratch / "index", retrievers=[miner], show_progress=True)
    if not Path(miner).is_dir():
        raise OdqaError(f"--miner must be bm25, dense or an index directory; got {miner!r}")
    source = Manifest.read(miner).source
    if source != str(corpus.resolve()):
        typer.echo(f"note: {miner} indexes {source}; its copy of the documents is used", err=True)
    return Path(miner)


def summary(stats: MiningStats, per_query: int) -> str:
    """One line: what was mined, and what was skipped."""
    line = (
        f"{stats.queries} queries, {stats.examples} examples, {stats.negatives} negatives, "
        f"{stats.short_queries} queries short of {per_query} negatives"
    )
    if stats.unjudged_queries:
        line += f", {stats.unjudged_queries} unjudged queries skipped"
    if stats.missing_positives:
        line += f", {stats.missing_positives} relevant documents not in the index skipped"
    return line


train_app = typer.Typer(
    help="Train retrievers (colbert, dense) and readers on your own data.",
    no_args_is_help=True,
)

TrainData = Annotated[
    Path,
    typer.Argument(
        help="Training data: JSONL (pairs, triples, labelled pairs, n-way with teacher scores; "
        "see README 'Training data formats'), a BEIR folder, or SQuAD JSON."
    ),
]
Out = Annotated[Path, typer.Option(help="The checkpoint folder to write.")]
Base = Annotated[
    str | None,
    typer.Option(help="Model to start from (local folder); default: the embedded MiniLM."),
]
Epochs = Annotated[float, typer.Option(help="Passes over the training data (may be fractional).")]
BatchSize = Annotated[int, typer.Option(help="Queries per batch (in-batch negatives).")]
Accumulation = Annotated[int, typer.Option(help="Batches per optimizer step.")]
LearningRate = Annotated[float, typer.Option("--lr", help="AdamW learning rate of the encoder.")]
Warmup = Annotated[float, typer.Option(help="Fraction of the steps spent warming up.")]
Temperature = Annotated[
    float | None,
    typer.Option(help="Contrastive temperature (default: 1 for ColBERT, 0.05 for dense)."),
]
Loss = Annotated[
    str,
    typer.Option(
        help="auto (distillation when every example has scores), contrastive or distillation."
    ),
]
Negatives = Annotated[
    int | None, typer.Option(help="Use at most this many hard negatives per example.")
]
Corpus = Annotated[Path | None, typer.Option(help="Documents that *_id fields refer to.")]
IdQueries = Annotated[
    Path | None, typer.Option("--queries", help="Queries that query_id fields refer to.")
]
Split = Annotated[str, typer.Option(help="BEIR folders: the qrels split (or a qrels file).")]
Articles = Annotated[
    str | None, typer.Option(help="SQuAD JSON: article indexes to use, e.g. 0-37.")
]
EvalCorpus = Annotated[Path | None, typer.Option(help="Dev corpus, scored exhaustively.")]
EvalQueries = Annotated[Path | None, typer.Option(help="Dev queries.")]
EvalQrels = Annotated[Path | None, typer.Option(help="Dev judgements.")]
EvalEvery = Annotated[
    int | None, typer.Option(help="Evaluate every N steps (default: every epoch).")
]
SaveEvery = Annotated[int, typer.Option(help="Save a resumable state every N steps.")]
Seed = Annotated[int, typer.Option(help="Seed of data order, dropout and initialisation.")]
Overwrite = Annotated[bool, typer.Option(help="Replace an existing --out folder.")]
Restart = Annotated[bool, typer.Option(help="Discard an interrupted run instead of resuming.")]

COLBERT_EPILOG = (
    "Example: odqa train colbert train.jsonl --out my-colbert --dim 128 --epochs 4 "
    "--eval-corpus dev/corpus.jsonl --eval-queries dev/queries.jsonl --eval-qrels dev/qrels.tsv"
)
DENSE_EPILOG = "Example: odqa train dense train.jsonl --out my-dense --epochs 4 --lr 3e-5"


@train_app.command("colbert", epilog=COLBERT_EPILOG)
def train_colbert(
    data: TrainData,
    out: Out,
    base: Base = None,
    dim: Annotated[
        int | None, typer.Option(help="Projection width for a new head (default 128).")
    ] = None,
    doc_maxlen: Annotated[
        int | None,
        typer.Option(
            help="Tokens of each training text (default 180); also recorded as the checkpoint's "
            "doc_maxlen unless --index-doc-maxlen says otherwise."
        ),
    ] = None,
    index_doc_maxlen: Annotated[
        int | None,
        typer.Option(
            help="doc_maxlen recorded in artifact.metadata, the length odqa and Stanford/PyLate "
            "tools index at (default: --doc-maxlen if given, else 300, or a Stanford base's)."
        ),
    ] = None,
    query_maxlen: Annotated[
        int | None,
        typer.Option(help="Query tokens, trained and recorded (default 32, or a base's)."),
    ] = None,
    epochs: Epochs = 1.0,
    batch_size: BatchSize = 32,
    accumulation: Accumulation = 1,
    lr: LearningRate = 2e-5,
    head_lr: Annotated[float, typer.Option(help="Learning rate of the projection.")] = 1e-3,
    warmup: Warmup = 0.1,
    temperature: Temperature = None,
    loss: Loss = "auto",
    negatives: Negatives = None,
    corpus: Corpus = None,
    queries: IdQueries = None,
    qrels: Split = "train",
    articles: Articles = None,
    eval_corpus: EvalCorpus = None,
    eval_queries: EvalQueries = None,
    eval_qrels: EvalQrels = None,
    eval_every: EvalEvery = None,
    save_every: SaveEvery = 100,
    seed: Seed = 0,
    device: Device = None,
    precision: Precision = "auto",
    overwrite: Overwrite = False,
    restart: Restart = False,
) -> None:
    """Train a ColBERT model (Stanford layout out: loads with odqa index --colbert-model)."""
    _train_retriever("colbert", **locals())


@train_app.command("dense", epilog=DENSE_EPILOG)
def train_dense(
    data: TrainData,
    out: Out,
    base: Base = None,
    epochs: Epochs = 1.0,
    batch_size: BatchSize = 32,
    accumulation: Accumulation = 1,
    lr: LearningRate = 2e-5,
    warmup: Warmup = 0.1,
    temperature: Temperature = None,
    loss: Loss = "auto",
    negatives: Negatives = None,
    corpus: Corpus = None,
    queries: IdQueries = None,
    qrels: Split = "train",
    articles: Articles = None,
    eval_corpus: EvalCorpus = None,
    eval_queries: EvalQueries = None,
    eval_qrels: EvalQrels = None,
    eval_every: EvalEvery = None,
    save_every: SaveEvery = 100,
    seed: Seed = 0,
    device: Device = None,
    precision: Precision = "auto",
    overwrite: Overwrite = False,
    restart: Restart = False,
) -> None:
    """Train a dense bi-encoder (a Hugging Face folder out: loads with odqa index --model)."""
    _train_retriever("dense", **locals())


def _train_retriever(
    kind: str,
    *,
    data: Path,
    out: Path,
    base: str | None,
    epochs: float,
    batch_size: int,
    accumulation: int,
    lr: float,
    warmup: float,
    temperature: float | None,
    loss: str,
    negatives: int | None,
    corpus: Path | None,
    queries: Path | None,
    qrels: str,
    articles: str | None,
    eval_corpus: Path | None,
    eval_queries: Path | None,
    eval_qrels: Path | None,
    eval_every: int | None,
    save_every: int,
    seed: int,
    device: str | None,
    precision: str,
    overwrite: bool,
    restart: bool,
    head_lr: float = 1e-3,
    **model: int | None,
) -> None:
    """What both retriever commands do with their options; ``model`` holds ColBERT's
    ``dim`` and lengths."""
    from odqa.cli.errors import user_errors
    from odqa.train.trainer import TrainConfig

    with user_errors():
        config = TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            accumulation=accumulation,
            learning_rate=lr,
            head_learning_rate=head_lr,
            warmup=warmup,
            temperature=temperature,
            loss=loss,
            max_negatives=negatives,
            save_every=save_every,
            eval_every=eval_every,
            seed=seed,
        )
        examples = _training_examples(data, corpus, queries, qrels, articles)
        _train(
            kind,
            examples,
            out,
            config,
            dev=_dev_set(eval_corpus, eval_queries, eval_qrels),
            base=base,
            device=device,
            precision=precision,
            overwrite=overwrite,
            restart=restart,
            **model,
        )


def _training_examples(
    data: Path, corpus: Path | None, queries: Path | None, qrels: str, articles: str | None
) -> list:
    from odqa.train.data import read_training_data

    examples = read_training_data(
        data, corpus=corpus, queries=queries, qrels=qrels, articles=parse_articles(articles)
    )
    typer.echo(f"{len(examples)} training examples from {data}", err=True)
    return examples


def _dev_set(corpus: Path | None, queries: Path | None, qrels: Path | None):
    from odqa.train.dev import DevSet

    if not any((corpus, queries, qrels)):
        return None
    if not all((corpus, queries, qrels)):
        raise OdqaError("--eval-corpus, --eval-queries and --eval-qrels go together")
    return DevSet(corpus, queries, qrels)


def _train(kind: str, examples: list, out: Path, config: TrainConfig, **options) -> None:
    """Train, print the summary; Ctrl-C leaves a resumable run (``options`` as
    :func:`~odqa.train.run.train_retriever` takes them)."""
    from odqa.train.run import train_retriever

    try:
        summary = train_retriever(kind, examples, out, config=config, show_progress=True, **options)
    except KeyboardInterrupt as exc:
        typer.echo(
            f"interrupted; run the same command again to resume from the last saved step "
            f"(state in {out}.partial)",
            err=True,
        )
        raise typer.Exit(130) from exc
    line = (
        f"{summary['steps']} steps, {summary['seconds']}s, "
        f"{summary['examples_per_second']} examples/s, loss {summary['loss']}"
    )
    if summary["dev"]:
        line += f", dev nDCG@10 {summary['dev']['ndcg@10']:.4f}"
    if "doc_maxlen" in summary:
        line += (
            f"; recorded query_maxlen {summary['query_maxlen']}, doc_maxlen "
            f"{summary['doc_maxlen']} (documents trained at {summary['training_doc_maxlen']} "
            "tokens)"
        )
    typer.echo(f"{line} -> {out}")


READER_EPILOG = (
    "Example: odqa train reader train-v1.1.json --out my-reader --articles 0-37 --reuse "
    "--eval dev-v1.1.json"
)
YESNO_EPILOG = (
    "Example: odqa train yesno 12B1_golden.json 12B2_golden.json --out my-yesno --epochs 3 "
    "--class-weights auto"
)


@train_app.command("reader", epilog=READER_EPILOG)
def train_reader_command(
    squad_json: Annotated[Path, typer.Argument(help="Training questions, SQuAD JSON.")],
    out: Annotated[Path, typer.Option(help="Where the reader folder goes.")],
    base: Annotated[
        str | None,
        typer.Option(help="Encoder folder to start from; default: the embedded all-MiniLM-L6-v2."),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the training questions.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Windows per step.")] = 8,
    learning_rate: Annotated[float, typer.Option(help="AdamW peak learning rate.")] = 2e-4,
    max_length: Annotated[int, typer.Option(help="Window in tokens, question included.")] = 384,
    doc_stride: Annotated[int, typer.Option(help="Tokens consecutive windows share.")] = 128,
    articles: Annotated[
        str | None, typer.Option(help="Only these articles, 0-based, inclusive: e.g. 0-37.")
    ] = None,
    max_questions: Annotated[
        int | None,
        typer.Option(
            help="Train on this many questions, spread over the paragraphs (the first of each "
            "paragraph, then the second, ...)."
        ),
    ] = None,
    answer_windows_only: Annotated[
        bool, typer.Option(help="Leave out the windows that do not hold the answer.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the head's initialisation and shuffling.")] = 0,
    eval_json: Annotated[
        Path | None,
        typer.Option("--eval", help="Then score EM/F1 on this SQuAD JSON (own paragraphs)."),
    ] = None,
    device: Device = None,
    precision: Precision = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
    reuse: Annotated[
        bool,
        typer.Option(
            help="Keep the reader already in --out if it was trained from the same base on the "
            "same data (sha256) with the same settings."
        ),
    ] = False,
) -> None:
    """Fine-tune an extractive reader on SQuAD-format questions."""
    from odqa.cli.errors import user_errors
    from odqa.train.reader import ReaderTrainConfig, train_reader

    with user_errors():
        config = ReaderTrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            max_length=max_length,
            doc_stride=doc_stride,
            max_questions=max_questions,
            answer_windows_only=answer_windows_only,
            seed=seed,
            device=device,
            precision=precision,
        )
        summary = train_reader(
            squad_json,
            out,
            config,
            base=base,
            articles=parse_articles(articles),
            eval_json=eval_json,
            overwrite=overwrite,
            reuse=reuse,
            show_progress=True,
        )
        if summary.get("reused"):
            typer.echo(f"{out}: kept, trained on the same data with the same settings")
            return
        losses = ", ".join(f"{loss:.3f}" for loss in summary["loss"])
        typer.echo(
            f"trained on {summary['examples']} questions ({summary['windows']} windows): "
            f"{summary['steps']} steps in {summary['seconds']:.0f} s; loss by epoch {losses}"
        )
        if "eval" in summary:
            scores = summary["eval"]
            typer.echo(
                f"{eval_json}: EM {scores['em']:.2f}  F1 {scores['f1']:.2f}  "
                f"({scores['count']} questions)"
            )
        typer.echo(f"reader written to {out}")


def parse_class_weights(value: str) -> str | tuple[float, float] | None:
    """``auto``, ``none`` or ``W_NO,W_YES`` as :func:`~odqa.train.yesno.train_yesno`
    takes them."""
    word = value.strip().lower()
    if word == "auto":
        return "auto"
    if word == "none":
        return None
    try:
        w_no, w_yes = (float(part) for part in value.split(","))
    except ValueError as exc:
        raise OdqaError(f"--class-weights takes auto, none or W_NO,W_YES, got {value!r}") from exc
    return (w_no, w_yes)


@train_app.command("yesno", epilog=YESNO_EPILOG)
def train_yesno_command(
    bioasq_json: Annotated[
        list[Path], typer.Argument(help="BioASQ JSON files; their yes/no questions are used.")
    ],
    out: Annotated[Path, typer.Option(help="Where the yes/no reader folder goes.")],
    base: Annotated[
        str | None,
        typer.Option(help="Encoder folder to start from; default: the embedded all-MiniLM-L6-v2."),
    ] = None,
    class_weights: Annotated[
        str,
        typer.Option(help="auto (inverse frequency over the training pairs), none, or W_NO,W_YES."),
    ] = "auto",
    lora: Annotated[
        bool, typer.Option(help="Train LoRA adapters (merged before saving) and the head only.")
    ] = False,
    lora_rank: Annotated[int, typer.Option(help="Rank of the LoRA adapters.")] = 8,
    epochs: Annotated[int, typer.Option(help="Passes over the (question, snippet) pairs.")] = 3,
    batch_size: Annotated[int, typer.Option(help="Pairs per step.")] = 16,
    learning_rate: Annotated[
        float | None,
        typer.Option(help="AdamW peak rate (default: 3e-5; with --lora 5e-4)."),
    ] = None,
    max_length: Annotated[int, typer.Option(help="Pair length in tokens.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of the head's initialisation and shuffling.")] = 0,
    device: Device = None,
    precision: Precision = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
) -> None:
    """Fine-tune a yes/no reader on BioASQ yes/no questions with their snippets."""
    from odqa.cli.errors import user_errors
    from odqa.train.yesno import YesNoTrainConfig, read_yesno_questions, train_yesno

    with user_errors():
        config = YesNoTrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            max_length=max_length,
            seed=seed,
            device=device,
            precision=precision,
            class_weights=parse_class_weights(class_weights),
            lora=lora,
            lora_rank=lora_rank,
        )
        questions = read_yesno_questions(bioasq_json)
        summary = train_yesno(
            questions, out, config, base=base, overwrite=overwrite, show_progress=True
        )
        w_no, w_yes = summary["class_weights"]
        losses = ", ".join(f"{loss:.3f}" for loss in summary["loss"])
        yes = sum(question.label == "yes" for question in questions)
        typer.echo(
            f"trained on {summary['questions']} yes/no questions ({yes} yes, "
            f"{summary['questions'] - yes} no; {summary['pairs']} question-snippet pairs, class "
            f"weights no {w_no:.3f} yes {w_yes:.3f}): {summary['steps']} steps in "
            f"{summary['seconds']:.0f} s; loss by epoch {losses}"
        )
        typer.echo(f"yes/no reader written to {out}")
