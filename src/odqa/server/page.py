"""The web page at ``/``: ask a question, see the answer, its evidence and its sources (each
hit's score drawn as a bar, a ``<meter>``).

The page is static (``static/``): it reads ``/info`` for the retrievers and whether a reader
is configured, then calls ``/ask`` (or ``/search`` without a reader).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


def mount_page(app: FastAPI) -> None:
    """Serve the page at ``/`` and its script and style under ``/static``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
