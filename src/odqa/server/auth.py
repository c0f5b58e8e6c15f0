"""Who may write: the API key rule of the write endpoints (POST and DELETE /documents).

With ``ODQA_API_KEY`` set, a write must send it as the ``X-API-Key`` header (else 401).
Without it, writes are refused (403) unless the server was started with ``--allow-writes``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader

API_KEY_ENV = "ODQA_API_KEY"
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description=f"Required by the write endpoints when the server has {API_KEY_ENV} set.",
)


@dataclass(frozen=True)
class WritePolicy:
    """``api_key`` (from ``ODQA_API_KEY``) if any, else whether writes are open to all."""

    api_key: str | None
    allow_writes: bool

    @property
    def mode(self) -> str:
        if self.api_key:
            return "api-key"
        return "open" if self.allow_writes else "disabled"

    def check(self, given: str | None) -> None:
        """Refuse a write this policy does not allow, saying how to get one through."""
        if self.api_key:
            if given is None or not secrets.compare_digest(given.encode(), self.api_key.encode()):
                raise HTTPException(
                    401,
                    "missing or wrong X-API-Key header: writes need the key the server has "
                    f"in {API_KEY_ENV}",
                    headers={"WWW-Authenticate": "X-API-Key"},
                )
        elif not self.allow_writes:
            raise HTTPException(
                403,
                f"writes are disabled: start the server with {API_KEY_ENV} set (then send it "
                "as X-API-Key) or with --allow-writes",
            )


def require_write(request: Request, given: str | None = Security(API_KEY_HEADER)) -> None:
    """Dependency of the write endpoints."""
    request.app.state.writes.check(given)
