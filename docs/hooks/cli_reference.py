"""A MkDocs hook: the command-line reference page is every command's own ``--help``, run
when the site is built (so it cannot drift from the commands)."""

from __future__ import annotations

import os
from typing import Any

MARKER = "<!-- every command's --help -->"


def leaf_commands(command: Any, words: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command of the app as its words: ("index",), ("train", "colbert"), …"""
    if not hasattr(command, "commands"):
        return [words]
    return [
        leaf
        for word, sub in command.commands.items()
        for leaf in leaf_commands(sub, (*words, word))
    ]


def help_texts() -> str:
    """A section a command: its words as the heading, its ``--help`` as a text block."""
    import typer.main
    from typer.testing import CliRunner

    from odqa.cli import app

    os.environ.update({"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"})
    runner = CliRunner()
    sections = []
    for words in leaf_commands(typer.main.get_command(app)):
        shown = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "100"}).output
        sections.append(f"## odqa {' '.join(words)}\n\n```text\n{shown.rstrip()}\n```\n")
    return "\n".join(sections)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, help_texts())
