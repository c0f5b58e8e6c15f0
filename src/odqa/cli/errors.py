"""How the CLI shows odqa's errors: one line on stderr, never a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from odqa.errors import OdqaError


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print odqa's errors as one line on stderr and exit 2; Ctrl-C exits 130."""
    try:
        yield
    except OdqaError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except KeyboardInterrupt as exc:
        typer.echo("interrupted; nothing was written", err=True)
        raise typer.Exit(130) from exc
