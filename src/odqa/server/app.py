"""``create_app``: an index served over HTTP (FastAPI), with a web page at ``/``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from odqa._version import __version__
from odqa.errors import OdqaError
from odqa.read.answer import DEFAULT_K, Reader
from odqa.retrieve.options import SearchOptions, search_options
from odqa.server import handlers, routes
from odqa.server.auth import API_KEY_ENV, WritePolicy
from odqa.server.limits import BodyLimit, Limits
from odqa.server.page import mount_page
from odqa.server.security import SecurityHeaders, mount_docs
from odqa.server.service import IndexService

DESCRIPTION = """Search an odqa index (BM25, dense, ColBERT, hybrid), answer questions with a
reader, add and delete documents. Errors are JSON: `{"detail": "what was wrong"}`."""


def create_app(
    index_dir: str | Path,
    options: SearchOptions | None = None,
    *,
    reader: Reader | None = None,
    k: int = DEFAULT_K,
    limits: Limits | None = None,
    api_key: str | None = None,
    allow_writes: bool = False,
    batch_window: float = 0.002,
    **settings,
) -> FastAPI:
    """The service for the index at ``index_dir``, opened (and its models loaded) now.

    ``options`` (a :class:`~odqa.retrieve.SearchOptions`, or its fields as keywords, as for
    :class:`~odqa.retrieve.Searcher`) say how the index is searched; its ``retriever`` is the
    one a request naming none gets. ``reader`` (see :func:`odqa.make_reader`) answers
    ``/ask`` from ``k`` passages by default (without one, ``/ask`` answers 409). ``api_key``
    (default: the ``ODQA_API_KEY`` environment variable) guards the write endpoints; without
    a key they are open only with ``allow_writes``. ``batch_window`` is how long, in
    seconds, a search waits for others to batch with. Serve it with its lifespan (uvicorn
    does; so does ``TestClient`` used in ``with``).
    """
    limits = limits or Limits()
    if not 1 <= k <= limits.max_k:
        raise OdqaError(f"k must be between 1 and max_k ({limits.max_k}), got {k}")
    service = IndexService(
        index_dir, search_options(options, settings), reader=reader, batch_window=batch_window
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()  # after uvicorn has waited for requests: updates complete

    app = FastAPI(
        title="odqa",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # mount_docs serves them, each with its own security policy
        redoc_url=None,
    )
    app.state.service = service
    app.state.limits = limits
    app.state.k = k
    app.state.writes = WritePolicy(api_key or os.environ.get(API_KEY_ENV) or None, allow_writes)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(SecurityHeaders)  # outermost of the two: on 413s too
    app.add_exception_handler(RequestValidationError, handlers.validation_error)
    app.add_exception_handler(OdqaError, handlers.odqa_error)
    app.add_exception_handler(OSError, handlers.os_error)
    app.add_exception_handler(Exception, handlers.internal_error)
    app.include_router(routes.router)
    mount_page(app)
    mount_docs(app)
    return app
