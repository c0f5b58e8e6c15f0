"""The ``odqa`` command: thin wrappers that parse, call the library and print.

One module per job, each a set of plain functions registered here: :mod:`~odqa.cli.index`
(index, info), :mod:`~odqa.cli.update` (add, delete, compact), :mod:`~odqa.cli.encode`,
:mod:`~odqa.cli.search` (search, eval, fuse), :mod:`~odqa.cli.fetch`, :mod:`~odqa.cli.ask`
(ask, eval-qa), :mod:`~odqa.cli.serve`, :mod:`~odqa.cli.tune`, :mod:`~odqa.cli.train` (mine
and the train sub-commands). They share :mod:`~odqa.cli.options` (every option declared once)
and :mod:`~odqa.cli.errors` (errors as one line, never a traceback), never this module; what
they print is shaped by :mod:`odqa.render`. The library is imported inside the commands, so
that ``odqa --help`` starts at once.
"""

from __future__ import annotations

import logging
import sys

import typer

from odqa.cli import ask, encode, fetch, index, search, serve, tune, update
from odqa.cli.errors import NotesAboveBars, OneLineUsage
from odqa.cli.train import MINE_EPILOG, mine, train_app

app = typer.Typer(
    cls=OneLineUsage,
    name="odqa",
    help="odqa: index a collection, search it (BM25, dense, ColBERT, hybrid), evaluate, "
    "answer questions, serve, train.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("index", epilog=index.INDEX_EPILOG)(index.index)
app.command("encode", epilog=encode.ENCODE_EPILOG)(encode.encode)
app.command("add", epilog=update.ADD_EPILOG)(update.add)
app.command("delete", epilog=update.DELETE_EPILOG)(update.delete)
app.command("compact", epilog=update.COMPACT_EPILOG)(update.compact)
app.command("search", epilog=search.SEARCH_EPILOG)(search.search)
app.command("eval", epilog=search.EVAL_EPILOG)(search.eval_command)
app.command("info", epilog=index.INFO_EPILOG)(index.info)
app.command("fuse", epilog=search.FUSE_EPILOG)(search.fuse)
app.command("fetch", epilog=fetch.FETCH_EPILOG)(fetch.fetch)
app.command("mine", epilog=MINE_EPILOG)(mine)
app.command("ask", epilog=ask.ASK_EPILOG)(ask.ask)
app.command("eval-qa", epilog=ask.EVAL_QA_EPILOG)(ask.eval_qa)
app.command("serve", epilog=serve.SERVE_EPILOG)(serve.serve)
app.command("tune", epilog=tune.TUNE_EPILOG)(tune.tune)
app.add_typer(train_app, name="train")


def main() -> None:
    logging.getLogger("odqa").addHandler(NotesAboveBars())
    app(prog_name="odqa")


if __name__ == "__main__":
    sys.exit(main())
