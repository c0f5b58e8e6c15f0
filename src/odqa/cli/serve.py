"""``odqa serve``: an index over HTTP (search, ask, add and delete documents, a web page)."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from odqa.cli.errors import user_errors
from odqa.cli.options import (
    PassagesRead,
    ReaderChoice,
    passages_read,
    with_reader_options,
    with_search_options,
)
from odqa.errors import OdqaError
from odqa.read.answer import DEFAULT_K

if TYPE_CHECKING:
    from odqa.retrieve.options import SearchOptions

SERVE_EPILOG = (
    "Example: ODQA_API_KEY=secret odqa serve my-index --port 8000 --reader-model my-reader"
)


@with_search_options
@with_reader_options
def serve(
    index_dir: Annotated[Path, typer.Argument(help="An odqa index directory.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    k: PassagesRead = DEFAULT_K,
    allow_writes: Annotated[
        bool,
        typer.Option(
            help="Allow POST/DELETE /documents without a key (when ODQA_API_KEY is unset)."
        ),
    ] = False,
    max_k: Annotated[int, typer.Option(help="Largest k (and top_k) a request may ask.")] = 100,
    max_query_chars: Annotated[int, typer.Option(help="Longest query or question.")] = 2000,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 1_000_000,
    header_timeout: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="Close a connection whose request line and headers are not in within this "
            "time (408 if it sent part of one).",
        ),
    ] = 10.0,
    access_log: Annotated[bool, typer.Option(help="Log every request on stderr.")] = True,
    *,
    options: "SearchOptions",
    reading: ReaderChoice,
) -> None:
    """Serve an index over HTTP: search, ask, add and delete documents; a web page at /.

    /ask reads -k passages when a request does not say, with the reader asked for
    (--reader-model, or --api-base for --reader generative), else the untrained sentence
    reader (the passage sentence most like the question). --retriever is what a request
    naming none gets."""
    import uvicorn

    from odqa.server import Limits, create_app
    from odqa.server.connections import header_timeout_protocol

    with user_errors():
        if not 0 < header_timeout < float("inf"):  # NaN too
            raise OdqaError(
                f"--header-timeout takes a positive number of seconds, got {header_timeout}"
            )
        chosen = reading.make(options.device, index_dir)
        app = create_app(
            index_dir,
            options,
            reader=chosen,
            k=passages_read(k),
            limits=Limits(max_k, max_query_chars, max_body_bytes),
            allow_writes=allow_writes,
        )
    protocol = header_timeout_protocol(header_timeout)
    uvicorn.run(app, host=host, port=port, access_log=access_log, http=protocol)
