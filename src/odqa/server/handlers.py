"""Errors as responses: one clear line in ``detail`` (and, for bad fields, the list)."""

from __future__ import annotations

import errno
import re

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from odqa.errors import OdqaError, printable
from odqa.server.security import add_headers


def describe(error: dict) -> str:
    """One validation error as a sentence naming the field."""
    kind = error["type"]
    if kind == "json_invalid":
        reason = error.get("ctx", {}).get("error", error["msg"])
        return f"malformed JSON at character {error['loc'][-1]}: {reason}"
    field = ".".join(str(part) for part in error["loc"][1:])
    at = error.get("ctx", {}).get("at")
    if at:  # a path inside the field, a validator's
        field = f"{field}{at}" if at.startswith("[") else f"{field}.{at}"
    field = printable(field)
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


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"]+/)+([^\s/'\":;,()]+)")
"""An absolute path in a message (not a URL's): kept as its last part."""

NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
WRITE_PATHS = ("/documents",)
"""The endpoints that write the index (the others only read it)."""


def public_text(request: Request, text: str) -> str:
    """``text`` without the server's paths: the index by its name (as /info shows it), any
    other absolute path by its last part; lone surrogates escaped."""
    index = request.app.state.service.path
    text = text.replace(str(index), index.name)
    return printable(_ABSOLUTE_PATH.sub(lambda match: match.group(1), text))


async def odqa_error(request: Request, exc: OdqaError) -> JSONResponse:
    """422 for a request odqa refuses (an unknown retriever, say), with odqa's message."""
    return JSONResponse({"detail": public_text(request, str(exc))}, status_code=422)


async def os_error(request: Request, exc: OSError) -> JSONResponse:
    """507 when the disk is full, 503 when the index cannot be read or written otherwise
    (a read-only file system, permissions): the reason, never a path. A write that fails
    leaves the index as it was (updates swap in a whole copy)."""
    reason = (
        "no space left on the server's disk"
        if exc.errno in NO_SPACE
        else ((exc.strerror or type(exc).__name__).lower())
    )
    if request.url.path.startswith(WRITE_PATHS):
        detail = f"the server could not write its index: {reason}; the index is unchanged"
    else:
        detail = f"the server could not read its index: {reason}"
    status = 507 if exc.errno in NO_SPACE else 503
    return JSONResponse({"detail": public_text(request, detail)}, status_code=status)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """500 as JSON, with the security headers (this answer is sent outside the middleware);
    the traceback goes to the server's log, not to the client."""
    response = JSONResponse(
        {"detail": f"internal error ({type(exc).__name__}); the server's log has the details"},
        status_code=500,
    )
    add_headers(response.headers)
    return response
