"""Request limits: the largest k, query and body the service accepts, and the body guard."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from odqa.errors import OdqaError


@dataclass(frozen=True)
class Limits:
    """What one request may ask for: ``max_k`` hits (or passages read), a query (or question)
    of ``max_query_chars`` characters, a body of ``max_body_bytes`` bytes."""

    max_k: int = 100
    max_query_chars: int = 2000
    max_body_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        if min(self.max_k, self.max_query_chars, self.max_body_bytes) < 1:
            raise OdqaError(f"every limit must be at least 1, got {self}")

    def check(self, text: str, k: int, *, text_name: str, k_name: str) -> None:
        """Refuse (422, with a message) a query longer than allowed or too many hits."""
        if len(text) > self.max_query_chars:
            raise HTTPException(
                422,
                f"'{text_name}' is {len(text):,} characters; the limit is {self.max_query_chars:,}",
            )
        if k > self.max_k:
            raise HTTPException(422, f"'{k_name}' is {k}; the limit is {self.max_k}")


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 with a message — at once
    when its Content-Length says so, else as soon as the streamed bytes pass the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = f"request body over the limit of {max_bytes:,} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await JSONResponse({"detail": self.message}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, self.message)  # re-raised by FastAPI's body parsing
            return message

        await self.app(scope, counted, send)
