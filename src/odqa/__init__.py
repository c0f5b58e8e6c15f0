"""odqa: open-domain question answering."""

__version__ = "0.1.0"
