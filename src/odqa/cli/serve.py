"""``odqa serve``: an index over HTTP, registered on the app by ``odqa.cli``::

app.command("serve", epilog=SERVE_EPILOG)(serve)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from odqa.cli.options import Device
from odqa.cli.qa import ApiBase, ApiKeyEnv, ApiModel, QueryModel, ReaderModel, Threshold

SERVE_EPILOG = (
    "Example: ODQA_API_KEY=secret odqa serve my-index --port 8000 --reader-model my-reader"
)


def serve(
    index_dir: Annotated[Path, typer.Argument(help="An odqa index directory.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    reader: Annotated[
        str | None,
        typer.Option(
            "--reader",
            help="extractive, yesno or generative (default: extractive when a reader model "
            "is given); without a reader, /ask is off.",
        ),
    ] = None,
    reader_model: ReaderModel = None,
    top_k: Annotated[int, typer.Option(help="Passages /ask reads unless asked otherwise.")] = 3,
    no_answer_threshold: Threshold = None,
    api_base: ApiBase = None,
    api_model: ApiModel = None,
    api_key_env: ApiKeyEnv = "OPENAI_API_KEY",
    model: QueryModel = None,
    device: Device = None,
    allow_writes: Annotated[
        bool,
        typer.Option(
            help="Allow POST/DELETE /documents without a key (when ODQA_API_KEY is unset)."
        ),
    ] = False,
    max_k: Annotated[int, typer.Option(help="Largest k (and top_k) a request may ask.")] = 100,
    max_query_chars: Annotated[int, typer.Option(help="Longest query or question.")] = 2000,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 1_000_000,
    access_log: Annotated[bool, typer.Option(help="Log every request on stderr.")] = True,
) -> None:
    """Serve an index over HTTP: search, ask, add and delete documents; a web page at /."""
    import uvicorn

    from odqa.cli.errors import user_errors
    from odqa.cli.qa import make_reader
    from odqa.server import Limits, create_app

    with user_errors():
        chosen = None
        if reader is not None or reader_model is not None or api_base is not None:
            chosen = make_reader(
                reader or "extractive",
                reader_model,
                device,
                no_answer_threshold,
                api_base=api_base,
                api_model=api_model,
                api_key_env=api_key_env,
            )
        app = create_app(
            index_dir,
            reader=chosen,
            top_k=top_k,
            model=model,
            device=device,
            limits=Limits(max_k, max_query_chars, max_body_bytes),
            allow_writes=allow_writes,
        )
    uvicorn.run(app, host=host, port=port, access_log=access_log)
