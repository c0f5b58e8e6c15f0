"""Errors as responses: one clear line in ``detail`` (and, for bad fields, the list)."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from odqa.errors import OdqaError


def describe(error: dict) -> str:
    """One validation error as a sentence naming the field."""
    kind = error["type"]
    if kind == "json_invalid":
        reason = error.get("ctx", {}).get("error", error["msg"])
        return f"malformed JSON at character {error['loc'][-1]}: {reason}"
    field = ".".join(str(part) for part in error["loc"][1:])
    if kind == "extra_forbidden":
        return f"unknown field '{field}'"
    if kind == "missing":
        return f"missing field '{field}'" if field else "missing request body"
    return f"field '{field}': {error['msg']}" if field else f"request body: {error['msg']}"


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 for a body that is not JSON, has unknown or missing fields, or wrong types."""
    listed = [{"loc": list(e["loc"]), "msg": describe(e), "type": e["type"]} for e in exc.errors()]
    detail = "; ".join(item["msg"] for item in listed)
    return JSONResponse({"detail": detail, "errors": listed}, status_code=422)


async def odqa_error(request: Request, exc: OdqaError) -> JSONResponse:
    """422 for a request odqa refuses (an unknown retriever, say), with odqa's message."""
    return JSONResponse({"detail": str(exc)}, status_code=422)
