"""How the CLI shows odqa's errors: one line on stderr, never a traceback."""

from __future__ import annotations

import contextlib
import errno
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import typer
from typer.core import TyperGroup

from odqa.errors import OdqaError
from odqa.fs import LOCK, is_temporary
from odqa.read.factory import ReaderSettingsError

READER_FLAGS = {
    "kind": "--reader",
    "model": "--reader-model",
    "no_answer_threshold": "--no-answer-threshold",
    "api_base": "--api-base",
    "api_model": "--api-model",
}
"""The flags of :func:`odqa.read.factory.make_reader`'s settings, for its error messages."""

OS_ADVICE = {
    errno.ENOSPC: "free some space and run again",
    errno.EDQUOT: "free some space (or raise the quota) and run again",
    errno.EFBIG: "the file system takes no file that large; write somewhere else",
    errno.EROFS: "write somewhere else",
    errno.EACCES: "check the permissions, or write somewhere else",
    errno.EPERM: "check the permissions, or write somewhere else",
}
"""What to do about the system errors a write meets, by ``errno``."""


def message(error: OdqaError) -> str:
    """The line the CLI prints for ``error``, naming flags where the library names settings."""
    if isinstance(error, ReaderSettingsError):
        return error.phrased(READER_FLAGS)
    return str(error)


def visible_path(name: str | bytes | int) -> str:
    """The path a user knows for ``name``: inside or beside a temporary sibling
    (``.NAME.partial-…/…``, ``.NAME.old-…``) or a writer lock (``.NAME.lock``), that is NAME;
    any other path as it is."""
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    path = Path(str(name))
    for depth, part in enumerate(path.parts):
        if is_temporary(part) or (part.startswith(".") and part.endswith(f".{LOCK}")):
            real = part[1:].rsplit(".", 1)[0]
            return str(Path(*path.parts[:depth], real))
    return str(path)


def os_message(error: OSError, path: str | Path | None = None) -> str:
    """One line for a system error: the path (the error's own, else ``path``, what the
    command was writing), the cause in words, and what to do."""
    name = error.filename if error.filename is not None else error.filename2
    where = visible_path(name) if name is not None else (str(path) if path is not None else "")
    cause = error.strerror or str(error) or type(error).__name__
    cause = cause[:1].lower() + cause[1:]
    advice = OS_ADVICE.get(error.errno)
    line = f"{where}: {cause}" if where else cause
    return f"{line}; {advice}" if advice else line


def close_progress_bars() -> None:
    """End every progress bar still on screen, so that what is printed next starts on a
    fresh line rather than at the end of a bar's."""
    std = sys.modules.get("tqdm.std")  # no tqdm imported, no bar on screen
    if std is None:
        return
    for bar in list(getattr(std.tqdm, "_instances", ())):
        with contextlib.suppress(Exception):
            bar.close()


class NotesAboveBars(logging.Handler):
    """Prints odqa's notes and warnings on stderr, each on a line of its own: through
    tqdm while a progress bar is on screen (it clears the bar, prints, draws it again)."""

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        std = sys.modules.get("tqdm.std")  # no tqdm imported, no bar on screen
        if std is not None and getattr(std.tqdm, "_instances", None):
            std.tqdm.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)


def fail(line: str, code: int) -> typer.Exit:
    """Print ``line`` on stderr, on a line of its own; the exit to raise."""
    close_progress_bars()
    typer.echo(line, err=True)
    return typer.Exit(code)


@contextlib.contextmanager
def user_errors(path: str | Path | None = None) -> Iterator[None]:
    """Print odqa's errors and system errors (disk full, read-only folder, …) as one line on
    stderr and exit 2; Ctrl-C exits 130. ``path`` is what the command writes, named by a
    system error that names no file of its own."""
    try:
        yield
    except OdqaError as exc:
        raise fail(f"error: {message(exc)}", 2) from exc
    except OSError as exc:
        raise fail(f"error: {os_message(exc, path)}", 2) from exc
    except KeyboardInterrupt as exc:
        raise fail("interrupted; nothing was written", 130) from exc


CLICK_ERROR: type[Exception] = next(
    base for base in typer.BadParameter.__mro__ if base.__name__ == "ClickException"
)
"""The base of click's usage errors (typer vendors click from 0.2x on: found through the one
it exports rather than imported from either)."""


class OneLineUsage(TyperGroup):
    """The ``odqa`` command group: a usage error (an unknown option or command, a missing
    argument, a value of the wrong type) is one ``error:`` line on stderr naming the command
    and the option, with click's near-miss suggestion, and exit status 2 — as odqa's own
    errors are, rather than typer's bordered panel."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):  # type: ignore[override]
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except CLICK_ERROR as error:
            if type(error).__name__ != "NoArgsIsHelpError":  # bare `odqa`: its help, shown
                close_progress_bars()
                typer.echo(f"error: {usage_line(error)}", err=True)
            sys.exit(getattr(error, "exit_code", 2))
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def usage_line(error: Exception) -> str:
    """``odqa search: Invalid value for '-k' / '--k': … (see odqa search --help)``."""
    text = " ".join(error.format_message().split())  # type: ignore[attr-defined]
    context = getattr(error, "ctx", None)
    if context is None:
        return text
    return f"{context.command_path}: {text} (see {context.command_path} --help)"
