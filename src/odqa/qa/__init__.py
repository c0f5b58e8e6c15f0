"""Question answering: retrieve passages for a question, then read the answer from them."""

from odqa.qa.pipeline import Pipeline

__all__ = ["Pipeline"]
