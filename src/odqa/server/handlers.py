"""Errors as responses: one clear line in ``detail`` (and, for bad fields, the list)."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from odqa.errors import OdqaError
from odqa.server.security import add_headers


def printable(text: str) -> str:
    """``text`` with any lone surrogate written as its escape (``\\ud800``), so that a
    message quoting a request (an unknown field's name, say) can be sent as UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def describe(error: dict) -> str:
    """One validation error as a sentence naming the field."""
    kind = error["type"]
    if kind == "json_invalid":
        reason = error.get("ctx", {}).get("error", error["msg"])
        return f"malformed JSON at character {error['loc'][-1]}: {reason}"
    field = ".".join(str(part) for part in error["loc"][1:])
    if kind == "string_unicode" and "surrogate" not in error["msg"]:  # pydantic's, not ours
        where = f"field '{field}'" if field else "request body"
        return f"{where}: not valid Unicode: a lone surrogate in a field name or value"
    if kind == "extra_forbidden":
        return f"unknown field '{field}'"
    if kind == "missing":
        return f"missing field '{field}'" if field else "missing request body"
    return f"field '{field}': {error['msg']}" if field else f"request body: {error['msg']}"


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 for a body that is not JSON, has unknown or missing fields, or wrong types."""
    listed = [
        {
            "loc": [printable(part) if isinstance(part, str) else part for part in e["loc"]],
            "msg": printable(describe(e)),
            "type": e["type"],
        }
        for e in exc.errors()
    ]
    detail = "; ".join(item["msg"] for item in listed)
    return JSONResponse({"detail": detail, "errors": listed}, status_code=422)


async def odqa_error(request: Request, exc: OdqaError) -> JSONResponse:
    """422 for a request odqa refuses (an unknown retriever, say), with odqa's message."""
    return JSONResponse({"detail": printable(str(exc))}, status_code=422)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """500 as JSON, with the security headers (this answer is sent outside the middleware);
    the traceback goes to the server's log, not to the client."""
    response = JSONResponse(
        {"detail": f"internal error ({type(exc).__name__}); the server's log has the details"},
        status_code=500,
    )
    add_headers(response.headers)
    return response
