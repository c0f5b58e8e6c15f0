"""Training a retriever end to end: data in, a checkpoint folder out, resumable.

The run's state lives in ``<out>.partial/`` next to the output folder; the finished checkpoint
is moved into place at the end, so ``out`` only ever holds a complete model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict
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


def train_retriever(
    kind: str,
    examples: Sequence[TrainingExample],
    out: str | Path,
    *,
    config: TrainConfig | None = None,
    base: str | Path | None = None,
    dim: int | None = None,
    doc_maxlen: int = 180,
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
    plain encoder gets a new ``dim``-wide projection (default 128); ``doc_maxlen`` caps the
    tokens of training texts. ``precision`` ``auto`` trains in bf16 autocast on CUDA and on
    CPUs with native bf16, in fp32 elsewhere (:func:`odqa.models.device.use_bf16`).
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
    model = _model(kind, examples, work, base, dim, doc_maxlen, torch_device)
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
    doc_maxlen: int,
    device,
) -> TrainableRetriever:
    # the encoder computes in fp32; the trainer's autocast region decides the precision
    if kind == "dense":
        return DenseScorer(DenseEncoder(base, device=str(device), precision="fp32"))
    start = work / "start"
    if not (start / "artifact.metadata").is_file():
        texts = [text for example in examples[:512] for text in example.texts[:1]]
        start = start_colbert(base, dim, texts, start)
    return ColBERTScorer(
        ColBERTEncoder(start, device=str(device), precision="fp32"), training_doc_maxlen=doc_maxlen
    )
