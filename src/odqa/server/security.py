"""Headers that keep browsers safe on every response, and the API documentation pages.

Every response says ``X-Content-Type-Options: nosniff`` (no guessing a JSON body is a page),
``X-Frame-Options: DENY`` (no framing: no clickjacking), ``Referrer-Policy: no-referrer``,
and a Content-Security-Policy: :data:`PAGE_POLICY` — the page, its script and its style come
from the server itself, nothing inline, nothing from elsewhere. The documentation pages at
``/docs`` and ``/redoc`` load Swagger UI and ReDoc from their CDN and carry one inline
script, so they get a policy of their own (:func:`docs_policy`): those hosts, and the
script by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""The Content-Security-Policy of every response but the documentation pages."""

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
"""Sent with every response, whatever its policy."""

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_ORIGIN = re.compile(r"""(?:src|href)=["'](https://[^/"']+)""")


class SecurityHeaders:
    """ASGI middleware: :data:`HEADERS` on every HTTP response, and :data:`PAGE_POLICY`
    unless the response brings its own Content-Security-Policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_headers(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, with_headers)


def add_headers(headers: MutableHeaders) -> None:
    """:data:`HEADERS`, and :data:`PAGE_POLICY` where no policy is set yet."""
    for name, value in HEADERS.items():
        headers.setdefault(name, value)
    headers.setdefault("Content-Security-Policy", PAGE_POLICY)


def docs_policy(html: str) -> str:
    """A policy for a documentation page: its inline scripts by hash, and the hosts its
    scripts, styles and icons come from (styles inline too: the bundles write them)."""
    hashes = [
        f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"
        for text in _INLINE_SCRIPT.findall(html)
    ]
    origins = sorted(set(_ORIGIN.findall(html)))
    if "https://fonts.googleapis.com" in origins:
        origins.append("https://fonts.gstatic.com")  # where that stylesheet's fonts are
    hosts = " ".join(origins)
    return (
        f"default-src 'self'; script-src 'self' {hosts} {' '.join(hashes)}".rstrip()
        + f"; style-src 'self' 'unsafe-inline' {hosts}; img-src 'self' data: {hosts}; "
        f"font-src 'self' {hosts}; worker-src 'self' blob:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = docs_policy(bytes(page.body).decode())
    return page


def mount_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` as FastAPI serves them, each with the policy
    its own HTML needs. The app is made with ``docs_url=None, redoc_url=None``."""

    def openapi_url(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/") + (app.openapi_url or "")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return _with_policy(
            get_swagger_ui_html(
                openapi_url=openapi_url(request),
                title=f"{app.title} - Swagger UI",
                swagger_ui_parameters=app.swagger_ui_parameters,
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return _with_policy(
            get_redoc_html(openapi_url=openapi_url(request), title=f"{app.title} - ReDoc")
        )
