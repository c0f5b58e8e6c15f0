"""Evaluation: TREC run files and retrieval metrics computed with pytrec_eval."""

from odqa.evaluate.ir import evaluate_run
from odqa.evaluate.runs import Run, read_trec_run, write_trec_run

__all__ = ["Run", "evaluate_run", "read_trec_run", "write_trec_run"]
