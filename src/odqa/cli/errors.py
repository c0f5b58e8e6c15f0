"""How the CLI shows odqa's errors: one line on stderr, never a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from odqa.errors import OdqaError
from odqa.read.factory import ReaderSettingsError

READER_FLAGS = {
    "kind": "--reader",
    "model": "--reader-model",
    "no_answer_threshold": "--no-answer-threshold",
    "api_base": "--api-base",
    "api_model": "--api-model",
}
"""The flags of :func:`odqa.read.factory.make_reader`'s settings, for its error messages."""


def message(error: OdqaError) -> str:
    """The line the CLI prints for ``error``, naming flags where the library names settings."""
    if isinstance(error, ReaderSettingsError):
        return error.phrased(READER_FLAGS)
    return str(error)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print odqa's errors as one line on stderr and exit 2; Ctrl-C exits 130."""
    try:
        yield
    except OdqaError as exc:
        typer.echo(f"error: {message(exc)}", err=True)
        raise typer.Exit(2) from exc
    except KeyboardInterrupt as exc:
        typer.echo("interrupted; nothing was written", err=True)
        raise typer.Exit(130) from exc
