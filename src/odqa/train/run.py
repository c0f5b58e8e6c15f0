"""Training a retriever end to end: data in, a checkpoint folder out, resumable.

The run's state lives in ``<out>.partial/`` next to the output folder; the finished checkpoint
is moved into place at the end, so ``out`` only ever holds a complete model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from odqa.errors import OdqaError
from odqa.models.colbert import ColBERTEncoder
from odqa.models.dense import DenseEncoder
from odqa.models.device import pick_device, use_bf16
from odqa.train.checkpoints import start_colbert
from odqa.train.dev import DevSet
from odqa.train.examples import TrainingExample
from odqa.train.retrievers import ColBERTScorer, DenseScorer, TrainableRetriever
from odqa.train.trainer import StepHook, TrainConfig, Trainer

KINDS = ("colbert", "dense")
SUMMARY_FILE = "odqa_training.json"
TRAINING_DOC_MAXLEN = 180


def train_retriever(
    kind: str,
    examples: Sequence[TrainingExample],
    out: str | Path,
    *,
    config: TrainConfig | None = None,
    base: str | Path | None = None,
    dim: int | None = None,
    doc_maxlen: int | None = None,
    index_doc_maxlen: int | None = None,
    query_maxlen: int | None = None,
    dev: DevSet | None = None,
    device: str | None = None,
    precision: str = "auto",
    overwrite: bool = False,
    restart: bool = False,
    show_progress: bool = False,
    on_step: StepHook | None = None,
) -> dict:
    """Train a ``kind`` retriever (``colbert`` or ``dense``) on ``examples`` into ``out``.

    ``base`` is the starting model (default: the embedded all-MiniLM-L6-v2). ColBERT from a
    plain encoder gets a new ``dim``-wide projection (default 128). ColBERT's lengths: training
    texts are cut at ``doc_maxlen`` tokens (default 180) and queries at ``query_maxlen``; the
    checkpoint's ``artifact.metadata`` records ``query_maxlen`` and, as ``doc_maxlen``,
    ``index_doc_maxlen`` (default: ``doc_maxlen`` when given, so tools that index with the
    checkpoint use the length it was trained at; else 300 for a new head, or a Stanford base's
    own) — see :func:`colbert_lengths`. ``precision`` ``auto`` trains in bf16 autocast on CUDA
    and on CPUs with native bf16, in fp32 elsewhere (:func:`odqa.models.device.use_bf16`).
    An interrupted run resumes from ``<out>.partial`` when called again with the same
    settings (``restart`` discards it). Returns the summary also written to ``out``.
    """
    if kind not in KINDS:
        raise OdqaError(f"kind must be one of {KINDS}, got {kind!r}")
    config = config or TrainConfig()
    target = Path(out).expanduser().resolve()
    if target.exists() and not overwrite:
        raise OdqaError(f"{target} already exists; pass --overwrite to replace it")
    work = target.with_name(target.name + ".partial")
    if restart and work.exists():
        shutil.rmtree(work)
    torch_device = pick_device(device)
    use_bf16(torch_device, precision)  # rejects an unknown precision before any work
    lengths = colbert_lengths(doc_maxlen, index_doc_maxlen, query_maxlen)
    model = _model(kind, examples, work, base, dim, lengths, torch_device)
    trainer = Trainer(
        model,
        examples,
        config,
        work / "state",
        device=torch_device,
        precision=precision,
        evaluate=dev,
        on_step=on_step,
    )
    summary = trainer.run(show_progress=show_progress)
    summary.update(kind=kind, examples=len(examples), config=asdict(config), precision=precision)
    summary.update(model.settings())
    for module in model.modules():
        module.eval()
    finished = work / "model"
    if finished.exists():
        shutil.rmtree(finished)
    model.save(finished)
    (finished / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    shutil.copy2(work / "state" / "training_log.jsonl", finished / "training_log.jsonl")
    if target.exists():
        shutil.rmtree(target)
    finished.replace(target)
    shutil.rmtree(work)
    return summary


def _model(
    kind: str,
    examples: Sequence[TrainingExample],
    work: Path,
    base: str | Path | None,
    dim: int | None,
    lengths: ColBERTLengths,
    device,
) -> TrainableRetriever:
    # the encoder computes in fp32; the trainer's autocast region decides the precision
    if kind == "dense":
        return DenseScorer(DenseEncoder(base, device=str(device), precision="fp32"))
    start = work / "start"
    if not (start / "artifact.metadata").is_file():
        texts = [text for example in examples[:512] for text in example.texts[:1]]
        start = start_colbert(base, dim, texts, start)
    encoder = ColBERTEncoder(
        start,
        device=str(device),
        precision="fp32",
        query_maxlen=lengths.query,
        doc_maxlen=lengths.recorded_doc,
    )
    return ColBERTScorer(encoder, training_doc_maxlen=lengths.training_doc)


@dataclass(frozen=True)
class ColBERTLengths:
    """Token lengths of a ColBERT run: what training cuts documents at, and what the
    checkpoint records for whoever encodes with it (None: the starting checkpoint's own)."""

    training_doc: int
    recorded_doc: int | None
    query: int | None


def colbert_lengths(
    doc_maxlen: int | None, index_doc_maxlen: int | None, query_maxlen: int | None
) -> ColBERTLengths:
    """The lengths the user chose, and what is recorded when they chose none: training cuts
    texts at ``doc_maxlen`` (default 180); the checkpoint records ``index_doc_maxlen``, else
    ``doc_maxlen`` when given — never a length the user did not ask for."""
    for name, value in (
        ("doc_maxlen", doc_maxlen),
        ("index_doc_maxlen", index_doc_maxlen),
        ("query_maxlen", query_maxlen),
    ):
        if value is not None and value < 3:
            raise OdqaError(f"{name} must be at least 3 tokens, got {value}")
    return ColBERTLengths(
        training_doc=doc_maxlen or TRAINING_DOC_MAXLEN,
        recorded_doc=index_doc_maxlen or doc_maxlen,
        query=query_maxlen,
    )
